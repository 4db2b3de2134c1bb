"""PURE: which virtual networks may reach which, from the cluster's network list.

A container on network S may open connections to a container on network T exactly when S is T
or T's ``allow_from`` names S. Everything else between two overlay addresses is dropped where it
is forwarded (on the sending and on the receiving agent), so isolation holds both on one host
(routed between bridges) and across hosts (decapsulated from ``vtep1024``). Replies to an allowed
connection always pass (connection tracking), so ``allow_from`` opens one direction only.
Traffic from or to addresses outside every overlay (the agents' own host addresses: health
checks; the outside world: egress) is not touched.

The rule set is expressed as address pairs so the kernel's sets can carry it (see
``firewall``): ``allowed`` holds (source space, destination space) for every permitted pair.
The kernel refuses overlapping intervals in one set, so a network whose space overlaps one seen
earlier in the list is left out (the masters never allow that; a broken document must not stop
the data plane).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from ipaddress import IPv4Network, IPv6Network, ip_network

Net = IPv4Network | IPv6Network


@dataclass(frozen=True)
class Isolation:
    overlays: frozenset[Net]  # every overlay address space of the cluster (both families)
    allowed: frozenset[tuple[Net, Net]]  # (from, to): same family, permitted


NONE = Isolation(frozenset(), frozenset())


def isolation(network: object) -> Isolation:
    """From the ``network`` object of the state document (overlays with subnets, allow_from).

    Malformed entries are skipped (the master validated them; a broken one must not stop the
    data plane), names in ``allow_from`` that name no network are ignored."""
    spaces: dict[str, list[Net]] = {}
    allow: dict[str, list[str]] = {}
    overlays = network.get("overlays", []) if isinstance(network, Mapping) else []
    taken: list[Net] = []
    for overlay in overlays if isinstance(overlays, list) else []:
        if not isinstance(overlay, Mapping) or not isinstance(overlay.get("name"), str):
            continue
        nets = [n for key in ("subnet", "subnet6") if (n := _net(overlay.get(key))) is not None]
        if any(n.overlaps(t) for n in nets for t in taken if n.version == t.version):
            continue
        taken.extend(nets)
        spaces[overlay["name"]] = nets
        sources = overlay.get("allow_from", [])
        allow[overlay["name"]] = (
            [s for s in sources if isinstance(s, str)] if isinstance(sources, list) else []
        )
    allowed: set[tuple[Net, Net]] = set()
    for name, nets in spaces.items():
        for source in [name, *allow.get(name, [])]:
            allowed.update(_pairs(spaces.get(source, []), nets))
    return Isolation(frozenset(taken), frozenset(allowed))


def _pairs(sources: Iterable[Net], targets: Iterable[Net]) -> Iterable[tuple[Net, Net]]:
    targets = list(targets)
    for s in sources:
        for t in targets:
            if s.version == t.version:
                yield s, t


def _net(text: object) -> Net | None:
    if not isinstance(text, str):
        return None
    try:
        return ip_network(text, strict=False)
    except ValueError:
        return None
