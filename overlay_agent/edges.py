"""The three edges a reconcile pass drives, as Protocols: the kernel (``netlink.Kernel``), the
agent's nftables table (``firewall.Firewall``: egress NAT and isolation) and the Docker Engine
(``docker_engine.Docker``).

``Reconciler`` (and so ``AgentLoop``) depends on these, not on the concrete classes, so a test can
drive them with in-memory fakes (tests/fakes/) while the real edges stay in the netns tests.
Every edge counts its writes (netlink messages, sysctls, nft transactions, Docker requests): a
pass with nothing to do must write nothing, and that is how it is checked.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from overlay_agent.desired import Masquerade
from overlay_agent.docker import DockerOutcome, NetworkSpec
from overlay_agent.errors import KernelError
from overlay_agent.isolation import Isolation
from overlay_agent.observed import ObservedNet
from overlay_agent.plan import Operation


class KernelEdge(Protocol):
    """One network namespace. Not thread-safe: driven from a single worker thread."""

    @property
    def writes(self) -> int: ...

    def observe(self) -> ObservedNet:
        """What we own or must look at in the namespace; raises ``KernelError``."""
        ...

    def apply_all(self, ops: Sequence[Operation]) -> list[tuple[Operation, KernelError]]:
        """Apply ``ops`` in order, every one tried; the refused ones with the reason."""
        ...

    def close(self) -> None: ...


class FirewallEdge(Protocol):
    """The agent's nftables table: egress masquerade and isolation between networks."""

    @property
    def writes(self) -> int: ...

    def ensure(self, masquerade: Masquerade | None, isolation: Isolation) -> bool:
        """Make the table implement both (no masquerade: no table); True if anything was
        written. Raises ``KernelError``."""
        ...


class DockerEdge(Protocol):
    """The Docker networks of the ``d-<name>`` bridges."""

    @property
    def writes(self) -> int: ...

    def ensure(self, want: Sequence[NetworkSpec]) -> DockerOutcome:
        """Make Docker hold ``want``; never raises for Docker's answers, reports them instead."""
        ...

    def network_containers(self, name: str) -> Mapping[str, Any]:
        """Docker's ``Containers`` map of network ``name``; raises ``DockerError``."""
        ...

    def close(self) -> None: ...
