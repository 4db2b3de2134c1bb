"""The overlay master's error hierarchy.

    OverlayError                 base of everything this package raises on purpose
    +-- ConfigError              the network config is invalid (carries every problem found)
    +-- NodeError                the replicated node could not do what was asked
        +-- NotReadyError        no quorum / no leader yet / outcome unknown: retry the same request
        +-- BindError            the Raft or HTTP port cannot be bound

Inside the replicated state machine nothing is raised: commands that cannot be applied return a
``Rejected`` value (see ``allocator``). Errors are mapped to HTTP statuses in ``api`` only.
"""

from __future__ import annotations

from dataclasses import dataclass


class OverlayError(Exception):
    """Base class of every error the overlay master raises on purpose."""


@dataclass(frozen=True)
class ConfigProblem:
    """One thing wrong with a network config: where, what value, which rule."""

    field: str
    value: object
    rule: str

    def __str__(self) -> str:
        return f"{self.field}: {self.value!r}: {self.rule}"


class ConfigError(OverlayError):
    """The network config is invalid. ``problems`` lists every problem found, not only the first."""

    def __init__(self, problems: list[ConfigProblem], source: str = "network config") -> None:
        self.problems = list(problems)
        self.source = source
        lines = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(f"{source} is invalid ({len(self.problems)} problem(s)):\n{lines}")


class NodeError(OverlayError):
    """The replicated node could not complete an operation."""


class NotReadyError(NodeError):
    """No quorum, no leader, or an unknown outcome: the same request may be retried safely."""


class BindError(NodeError):
    """A port could not be bound."""
