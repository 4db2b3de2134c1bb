"""Address spaces that must not overlap (pure): the VTEP spaces and every network's subnets."""

from __future__ import annotations

from ipaddress import IPv4Network, IPv6Network

from overlay_master.errors import ConfigProblem
from overlay_master.network import OverlayConfig

Net = IPv4Network | IPv6Network


def vtep_spaces(v4: IPv4Network | None, v6: IPv6Network | None) -> list[tuple[str, Net]]:
    spaces: list[tuple[str, Net]] = []
    if v4 is not None:
        spaces.append(("vtep_subnet", v4))
    if v6 is not None:
        spaces.append(("vtep_subnet6", v6))
    return spaces


def spaces_of(overlay: OverlayConfig) -> list[tuple[str, Net]]:
    return [
        (f"overlay '{overlay.name}' {key}", net)
        for key, net in (("subnet", overlay.subnet), ("subnet6", overlay.subnet6))
        if net is not None
    ]


def overlap_problems(
    at: str, overlay: OverlayConfig, spaces: list[tuple[str, Net]]
) -> list[ConfigProblem]:
    """Where ``overlay``'s subnets overlap one of ``spaces`` (named), one problem each."""
    problems = []
    for key, net in (("subnet", overlay.subnet), ("subnet6", overlay.subnet6)):
        if net is None:
            continue
        for other_name, other in spaces:
            if other.version == net.version and other.overlaps(net):
                problems.append(
                    ConfigProblem(
                        f"{at}{key}",
                        str(net),
                        f"incorrect address space for the overlay network '{overlay.name}': "
                        f"it overlaps {other_name} {other}",
                    )
                )
    return problems
