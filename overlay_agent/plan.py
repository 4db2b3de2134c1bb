"""PURE: desired + observed -> the ordered operations that make the kernel match.

Design notes
- Level-triggered: the plan depends only on the two snapshots, never on history, so the same
  code serves a first start (adopting what a previous run left), a change from the masters, and
  the periodic repair of drift. An empty plan means the kernel already matches: the reconciler
  then makes no netlink writes at all.
- Order: removals first and route first (route, neighbour, FDB, addresses, links), so nothing
  ever routes into a half-removed peer; then additions link first and route last (link, MTU/up,
  addresses, forwarding, FDB, neighbour, route), so by the time a route exists the kernel already
  has the neighbour and FDB entries and never needs to ARP or flood across the overlay.
- Ownership: only ``vtep1024``, bridges tagged with our ifalias (unless ``want.held``: a Docker
  network still uses them), permanent neighbours and self FDB entries on ``vtep1024`` and routes
  with our protocol number are removed. An untagged ``m-``/``d-`` bridge we want (e.g. made by
  the CNI bridge plugin or by Docker first) is adopted by tagging.
- ``vtep1024`` is recreated only when its kind, VNI, port, MAC or learning flag is wrong: setting
  a MAC on a live device flushes its neighbours (DC/OS bug DCOS_OSS-3855). When it is recreated,
  everything that hung off the old device is gone with it, so the plan re-adds all of it.
- Changed values use "replace" (a peer's new MAC for the same VTEP IP, a new VTEP IP for the same
  subnet) rather than delete + add, so traffic to that peer never sees a gap.
- Both families go through the same operations: a link's addresses, neighbours and routes are of
  either family, and forwarding is enabled per family. The kernel's own IPv6 link-local addresses
  are never observed (netlink.py), so they are never removed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from ipaddress import IPv4Address
from operator import attrgetter

from overlay_agent.desired import (
    Address,
    Bridge,
    DesiredNet,
    FdbEntry,
    Interface,
    Neighbour,
    Route,
    Vtep,
)
from overlay_agent.observed import ObservedLink, ObservedNet, ObservedRoute


@dataclass(frozen=True)
class DeleteRoute:
    route: ObservedRoute


@dataclass(frozen=True)
class DeleteNeighbour:
    ip: Address


@dataclass(frozen=True)
class DeleteFdb:
    mac: str
    dst: IPv4Address


@dataclass(frozen=True)
class DeleteAddress:
    link: str
    address: Interface


@dataclass(frozen=True)
class DeleteLink:
    name: str


@dataclass(frozen=True)
class CreateVtep:
    vtep: Vtep


@dataclass(frozen=True)
class CreateBridge:
    bridge: Bridge


@dataclass(frozen=True)
class SetLink:
    """Bring an existing link to the wanted MTU / up state / ownership tag (None = leave)."""

    name: str
    mtu: int | None = None
    up: bool = False
    tag: bool = False


@dataclass(frozen=True)
class AddAddress:
    link: str
    address: Interface


@dataclass(frozen=True)
class EnableForwarding:
    version: int = 4  # IP version: net.ipv4.ip_forward or net.ipv6.conf.all.forwarding


@dataclass(frozen=True)
class ReplaceFdb:
    entry: FdbEntry


@dataclass(frozen=True)
class ReplaceNeighbour:
    neighbour: Neighbour


@dataclass(frozen=True)
class ReplaceRoute:
    route: Route


Operation = (
    DeleteRoute
    | DeleteNeighbour
    | DeleteFdb
    | DeleteAddress
    | DeleteLink
    | CreateVtep
    | CreateBridge
    | SetLink
    | AddAddress
    | EnableForwarding
    | ReplaceFdb
    | ReplaceNeighbour
    | ReplaceRoute
)


def plan(want: DesiredNet, seen: ObservedNet) -> list[Operation]:
    """The operations, in the safe order, that turn ``seen`` into ``want``."""
    vtep_ops, seen = _vtep(want.vtep, seen)
    bridge_ops = [op for b in sorted(want.bridges, key=lambda b: b.name) for op in _bridge(b, seen)]
    stale_bridges = [
        DeleteLink(b.name)
        for b in sorted(seen.bridges, key=lambda b: b.name)
        if b.owned and b.name not in {w.name for w in want.bridges} and b.name not in want.held
    ]
    link_ops = vtep_ops + bridge_ops
    removals: list[Operation] = [
        *_stale_routes(want, seen),
        *_stale_neighbours(want, seen),
        *_stale_fdb(want, seen),
        *[op for op in link_ops if isinstance(op, DeleteAddress)],
        *[op for op in link_ops if isinstance(op, DeleteLink)],
        *stale_bridges,
    ]
    additions: list[Operation] = [
        *[op for op in link_ops if isinstance(op, CreateVtep | CreateBridge | SetLink)],
        *[op for op in link_ops if isinstance(op, AddAddress)],
        *([EnableForwarding()] if want.forwarding and not seen.forwarding else []),
        *([EnableForwarding(6)] if want.forwarding6 and not seen.forwarding6 else []),
        *_missing_fdb(want, seen),
        *_missing_neighbours(want, seen),
        *_missing_routes(want, seen),
    ]
    return removals + additions


def _vtep(want: Vtep | None, seen: ObservedNet) -> tuple[list[Operation], ObservedNet]:
    """Ops for the VXLAN device, and the observation as it will be once they are applied."""
    link = seen.vtep
    if want is None:
        return ([DeleteLink(link.name)] if link is not None else []), seen
    if link is not None and not _compatible(link, want):
        gone = replace(
            seen,
            vtep=None,
            neighbours=frozenset(),
            fdb=frozenset(),
            routes=frozenset(r for r in seen.routes if r.oif != link.index),
        )
        return [DeleteLink(link.name), CreateVtep(want), *_add(want.name, want.addresses)], gone
    if link is None:
        return [CreateVtep(want), *_add(want.name, want.addresses)], seen
    return _link_state(link, want.name, want.mtu, want.addresses, tag=False), seen


def _compatible(link: ObservedLink, want: Vtep) -> bool:
    v = link.vxlan
    return (
        link.kind == "vxlan"
        and v is not None
        and (v.vni, v.port, v.learning) == (want.vni, want.port, False)
        and link.mac == want.mac
    )


def _bridge(want: Bridge, seen: ObservedNet) -> list[Operation]:
    link = seen.bridge(want.name)
    if link is None:
        return [CreateBridge(want), *_add(want.name, want.addresses)]
    return _link_state(link, want.name, want.mtu, want.addresses, tag=not link.owned)


def _add(name: str, addresses: Sequence[Interface]) -> list[Operation]:
    return [AddAddress(name, a) for a in addresses]


def _link_state(
    link: ObservedLink, name: str, mtu: int, addresses: Sequence[Interface], tag: bool
) -> list[Operation]:
    ops: list[Operation] = []
    if link.mtu != mtu or not link.up or tag:
        ops.append(SetLink(name, mtu=mtu if link.mtu != mtu else None, up=not link.up, tag=tag))
    unwanted = sorted(link.addresses - set(addresses), key=_interface_key)
    ops += [DeleteAddress(name, a) for a in unwanted]
    ops += [AddAddress(name, a) for a in addresses if a not in link.addresses]
    return ops


# The per-peer objects (thousands, every pass) are compared and sorted by their integer ``key``
# (kernel_objects.net_key), computed once when each object is made: a pass between two changes
# reuses the desired objects, and netlink_bulk reuses the observed ones.


def _stale_routes(want: DesiredNet, seen: ObservedNet) -> list[Operation]:
    wanted = {r.key[:3] for r in want.routes}
    stale = [r for r in seen.routes if r.key[:3] not in wanted]
    return [DeleteRoute(r) for r in sorted(stale, key=_route_key)]


def _missing_routes(want: DesiredNet, seen: ObservedNet) -> list[Operation]:
    oif = seen.vtep.index if seen.vtep is not None else None
    have = {r.key for r in seen.routes if oif is not None and r.oif == oif}
    missing = [r for r in want.routes if r.key not in have]
    return [ReplaceRoute(r) for r in sorted(missing, key=_key)]


def _stale_neighbours(want: DesiredNet, seen: ObservedNet) -> list[Operation]:
    wanted = {n.key for n in want.neighbours}
    stale = [n for n in seen.neighbours if n.permanent and n.key not in wanted]
    return [DeleteNeighbour(n.ip) for n in sorted(stale, key=_key)]


def _missing_neighbours(want: DesiredNet, seen: ObservedNet) -> list[Operation]:
    have = {(n.key, n.mac) for n in seen.neighbours if n.permanent}
    missing = [n for n in want.neighbours if (n.key, n.mac) not in have]
    return [ReplaceNeighbour(n) for n in sorted(missing, key=_key)]


def _stale_fdb(want: DesiredNet, seen: ObservedNet) -> list[Operation]:
    wanted = {(e.mac, e.dst) for e in want.fdb}
    unwanted = [(mac, dst) for mac, dst in seen.fdb if (mac, dst) not in wanted]
    if not unwanted:
        return []
    wanted_macs = {e.mac for e in want.fdb}
    per_mac: dict[str, int] = {}
    for mac, _ in seen.fdb:
        per_mac[mac] = per_mac.get(mac, 0) + 1
    # A wanted MAC seen once with the wrong remote is fixed by "replace"; delete only the rest.
    return [
        DeleteFdb(mac, dst)
        for mac, dst in sorted(unwanted, key=lambda e: (e[0], int(e[1])))
        if mac not in wanted_macs or per_mac[mac] > 1
    ]


def _missing_fdb(want: DesiredNet, seen: ObservedNet) -> list[Operation]:
    missing = [e for e in want.fdb if (e.mac, e.dst) not in seen.fdb]
    return [ReplaceFdb(e) for e in sorted(missing, key=lambda e: e.mac)]


_key = attrgetter("key")


def _interface_key(address: Interface) -> tuple[int, int, int]:
    return address.version, int(address.ip), address.network.prefixlen


def _route_key(route: ObservedRoute) -> tuple[int, ...]:
    return (*route.key, route.oif or 0)


def describe(op: Operation) -> str:
    """An operation in words, for error messages (``repr`` for the rare ones)."""
    match op:
        case ReplaceFdb(entry):
            return f"adding FDB {entry.mac} -> {entry.dst}"
        case ReplaceNeighbour(n):
            return f"adding neighbour {n.ip} -> {n.mac}"
        case ReplaceRoute(r):
            return f"adding route {r.dst} via {r.via}"
        case DeleteRoute(r):
            return f"deleting route {r.dst}"
        case CreateVtep(v):
            return f"creating {v.name} (VNI {v.vni}, port {v.port}, MAC {v.mac})"
        case CreateBridge(b):
            return f"creating bridge {b.name}"
        case EnableForwarding(version):
            return f"enabling IPv{version} forwarding"
        case _:
            return repr(op)
