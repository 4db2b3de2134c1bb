"""Validating edits of the live network list (pure): a network added to a running cluster, a
changed ``allow_from``. The rules are the config file's (``validation``), plus no clash with the
networks and the VTEP spaces already in the log.
"""

from __future__ import annotations

from overlay_master.address_spaces import spaces_of, vtep_spaces
from overlay_master.errors import ConfigError, ConfigProblem
from overlay_master.network import NetworkConfig, OverlayConfig
from overlay_master.validation import Checker


def parse_new_network(
    item: object, network: NetworkConfig
) -> tuple[OverlayConfig | None, list[ConfigProblem], list[ConfigProblem]]:
    """Validate a network to add next to ``network``'s: the file's rules, plus no clash with the
    networks and VTEP spaces already there. Returns (network or None, problems with the request
    itself, conflicts with what exists), so that callers can tell 422 from 409."""
    checker = Checker()
    overlay = checker.overlay("", item)
    if overlay is None or checker.problems:
        return None, checker.problems, []
    conflicts = Checker()
    if network.overlay(overlay.name) is not None:
        conflicts.problem("name", overlay.name, "a network of this name already exists")
    spaces = vtep_spaces(network.vtep_subnet, network.vtep_subnet6)
    for existing in network.overlays:
        spaces.extend(spaces_of(existing))
    conflicts.overlap("", overlay, spaces)
    checker.references("allow_from", overlay, set(network.names) | {overlay.name})
    if checker.problems or conflicts.problems:
        return None, checker.problems, conflicts.problems
    return overlay, [], []


def parse_allow_from(value: object, name: str, network: NetworkConfig) -> tuple[str, ...]:
    """A new ``allow_from`` list for network ``name``; raises ``ConfigError`` naming the problem."""
    checker = Checker()
    allow = checker.allow_from("allow_from", value)
    if allow is not None:
        checker.references("allow_from", OverlayConfig(name, allow_from=allow), set(network.names))
    if checker.problems or allow is None:
        raise ConfigError(checker.problems, "allow_from")
    return allow
