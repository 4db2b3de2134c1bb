"""PURE: the per-peer kernel objects (FDB entries, neighbours, routes) from the other agents'
records, for ``desired``.

Per remote agent sharing an overlay with us: ONE FDB entry (VTEP MAC -> underlay IP), a permanent
neighbour per family (VTEP IP -> MAC, VTEP IPv6 -> the same MAC) and, per shared overlay and
family, a route (its block via its VTEP address of that family). IPv6 routes need both ends to
have an IPv6 VTEP. A malformed remote record is skipped; conflicts are resolved
deterministically: records are visited in underlay-IP order and the first claim on a VTEP
address, a MAC or a block wins (per family: a peer whose IPv6 VTEP clashes keeps its IPv4 part).
This is the hot path of a pass at scale (thousands of peers): parsing is memoised
(``addresses``) and overlap tests go through ``Claims``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network
from typing import Any

from overlay_agent.addresses import (
    Claims,
    interface_address,
    interface_address6,
    ipv4_net,
    ipv6_net,
    within,
)
from overlay_agent.addresses import mac as parse_mac
from overlay_agent.kernel_objects import (
    Address,
    FdbEntry,
    LocalOverlay,
    Neighbour,
    Network,
    Route,
    Vtep,
)


def peers(
    agents: Mapping[IPv4Address, Mapping[str, Any]],
    me: IPv4Address,
    local: Sequence[LocalOverlay],
    vtep: Vtep | None,
) -> tuple[frozenset[Neighbour], frozenset[FdbEntry], frozenset[Route]]:
    """Neighbours, FDB entries and routes towards every agent of ``agents`` but ``me``."""
    if vtep is None:
        return frozenset(), frozenset(), frozenset()
    shared = {lo.name: info_net(lo.record) for lo in local if lo.subnet is not None}
    shared6 = {lo.name: info_net6(lo.record) for lo in local if lo.subnet6 is not None}
    if vtep.address6 is None:
        shared6 = {}  # no IPv6 VTEP of ours: IPv6 blocks of others are unreachable
    found = _Peers(local, vtep)
    for ip in sorted(agents, key=int):
        if ip == me:
            continue
        peer = _peer(agents[ip], shared, shared6, vtep)
        if peer is not None:
            found.add(ip, peer)
    return (
        frozenset(found.neighbours.values()),
        frozenset(found.fdb.values()),
        frozenset(found.routes),
    )


@dataclass(frozen=True)
class _Peer:
    """What a remote record offers us: its VTEP MAC, and per family its VTEP address and the
    blocks of the overlays it shares with us (None: nothing usable in that family)."""

    mac: str
    v4: tuple[IPv4Address, list[Network]] | None
    v6: tuple[IPv6Address, list[Network]] | None


class _Peers:
    """The per-peer objects, built one record at a time in underlay-IP order: the first claim on
    a VTEP address, a MAC or a block wins."""

    def __init__(self, local: Sequence[LocalOverlay], vtep: Vtep) -> None:
        self.vtep = vtep
        self.claims = Claims(lo.subnet for lo in local if lo.subnet is not None)
        self.claims6 = Claims((lo.subnet6 for lo in local if lo.subnet6 is not None), bits=128)
        self.own = {vtep.address.ip, *([vtep.address6.ip] if vtep.address6 else [])}
        self.neighbours: dict[Address, Neighbour] = {}
        self.fdb: dict[str, FdbEntry] = {}
        self.routes: list[Route] = []

    def add(self, underlay: IPv4Address, peer: _Peer) -> None:
        if peer.mac in self.fdb or peer.mac == self.vtep.mac:
            return
        parts = [
            part
            for part in (self._fresh(peer.v4, self.claims), self._fresh(peer.v6, self.claims6))
            if part is not None
        ]
        if not parts:
            return
        self.fdb[peer.mac] = FdbEntry(peer.mac, underlay)
        for ip, fresh in parts:
            self.neighbours[ip] = Neighbour(ip, peer.mac)
            claims = self.claims if ip.version == 4 else self.claims6
            for n in fresh:
                self.routes.append(Route(n, ip))
                claims.add(n)

    def _fresh(
        self, part: tuple[Address, list[Network]] | None, claims: Claims
    ) -> tuple[Address, list[Network]] | None:
        """The part of one family still unclaimed: its VTEP address and its fresh blocks."""
        if part is None:
            return None
        ip, nets = part
        if ip in self.neighbours or ip in self.own:
            return None
        fresh = [n for n in nets if not claims.overlaps(n)]
        return (ip, fresh) if fresh else None


def _peer(
    record: Mapping[str, Any],
    shared: Mapping[str, IPv4Network | None],
    shared6: Mapping[str, IPv6Network | None],
    vtep: Vtep,
) -> _Peer | None:
    """What a remote record offers, or None if unusable.

    ``shared``/``shared6``: our overlays (with a block of that family) by name, each with its
    configured address space if any.
    """
    overlays = record.get("overlays")
    if not isinstance(overlays, list):
        return None
    backend: Mapping[str, Any] | None = None
    nets: list[Network] = []
    nets6: list[Network] = []
    for overlay in overlays:
        if not isinstance(overlay, Mapping):
            continue
        name = str(info(overlay).get("name", ""))
        found = False
        if name in shared:
            subnet = ipv4_net(overlay.get("subnet"))
            if subnet is not None and within(subnet, shared[name] or subnet):
                nets.append(subnet)
                found = True
        if name in shared6:
            subnet6 = ipv6_net(overlay.get("subnet6"))
            if subnet6 is not None and within(subnet6, shared6[name] or subnet6):
                nets6.append(subnet6)
                found = True
        if found:
            backend = backend or vxlan(overlay)
    if backend is None:
        return None
    try:
        ip = interface_address(str(backend["vtep_ip"]))
        mac = parse_mac(str(backend["vtep_mac"]))
    except (KeyError, ValueError):
        return None
    v4 = (ip, nets) if nets and ip in vtep.address.network else None
    return _Peer(mac, v4, _peer6(backend, nets6, vtep))


def _peer6(
    backend: Mapping[str, Any], nets6: list[Network], vtep: Vtep
) -> tuple[IPv6Address, list[Network]] | None:
    text = backend.get("vtep_ip6")
    if not nets6 or vtep.address6 is None or not isinstance(text, str):
        return None
    try:
        ip = interface_address6(text)
    except ValueError:
        return None
    return (ip, nets6) if ip in vtep.address6.network else None


def info(overlay: Mapping[str, Any]) -> Mapping[str, Any]:
    """An overlay entry's ``info`` (name and the configured address spaces), or {}."""
    found = overlay.get("info")
    return found if isinstance(found, Mapping) else {}


def vxlan(overlay: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """An overlay entry's VXLAN backend (VTEP addresses and MAC), or None."""
    backend = overlay.get("backend")
    found = backend.get("vxlan") if isinstance(backend, Mapping) else None
    return found if isinstance(found, Mapping) else None


def info_net(overlay: Mapping[str, Any]) -> IPv4Network | None:
    """The overlay's configured IPv4 address space."""
    return ipv4_net(info(overlay).get("subnet"))


def info_net6(overlay: Mapping[str, Any]) -> IPv6Network | None:
    """The overlay's configured IPv6 address space."""
    return ipv6_net(info(overlay).get("subnet6"))
