"""PURE: the cluster state (DC/OS shape) + who I am -> the kernel objects this agent wants.

Input is the document the masters serve (``{"network": {...}, "agents": [record, ...]}``, see
docs/api.md); output is a ``DesiredNet`` of frozen values. Nothing here does I/O.

Rules (DC/OS recipe, reference section 4, plus ours):
- one ``vtep1024`` (VNI 1024, our UDP port, learning off) with the VTEP MAC and ``vtep_ip/prefix``
  the master gave us; MTU = ``vtep_mtu`` if configured, else the underlay MTU minus 50;
- per local overlay with bridges: ``m-<name>``/``d-<name>`` with the first host address of each
  half as gateway, the overlay MTU, and IP forwarding on;
- per remote agent sharing an overlay with us: a permanent neighbour (VTEP IP -> VTEP MAC), an FDB
  entry (VTEP MAC -> underlay IP) and, per shared overlay, a route (its subnet via its VTEP IP);
- masquerade from our overlays' subnets to anything that is not an overlay subnet;
- isolation between the cluster's networks (``isolation``), from the state's network list.

A malformed or conflicting *remote* record is skipped (one bad peer must not stop the data plane);
a malformed record of our own raises ``StateError``. Conflicts are resolved deterministically:
records are visited in underlay-IP order and the first claim on a VTEP IP, MAC or subnet wins.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Interface, IPv4Network
from typing import Any

from overlay_agent.addresses import Claims, interface, ipv4, ipv4_net, within

# Re-exported: bench/agent_reconcile.py resets the parser memos through this module.
from overlay_agent.addresses import forget_parsed as forget_parsed  # noqa: PLC0414
from overlay_agent.addresses import mac as parse_mac
from overlay_agent.errors import StateError
from overlay_agent.isolation import NONE, Isolation, isolation
from overlay_wire.contract import DEFAULT_VXLAN_PORT, VNI, VTEP_NAME

VXLAN_OVERHEAD = 50  # IPv4 underlay: outer IP 20 + UDP 8 + VXLAN 8 + inner Ethernet 14
DEFAULT_UNDERLAY_MTU = 1500


@dataclass(frozen=True)
class AgentOptions:
    """Who this agent is and what it was asked to build."""

    ip: IPv4Address
    vxlan_port: int = DEFAULT_VXLAN_PORT
    mesos_bridge: bool = True
    docker_bridge: bool = True


@dataclass(frozen=True)
class Vtep:
    name: str
    vni: int
    port: int
    mac: str
    address: IPv4Interface
    mtu: int


@dataclass(frozen=True)
class Bridge:
    name: str
    overlay: str
    gateway: IPv4Interface  # first host of the half, with the half's prefix length
    mtu: int

    @property
    def subnet(self) -> IPv4Network:
        return self.gateway.network


@dataclass(frozen=True)
class Neighbour:
    ip: IPv4Address
    mac: str


@dataclass(frozen=True)
class FdbEntry:
    mac: str
    dst: IPv4Address


@dataclass(frozen=True)
class Route:
    dst: IPv4Network
    via: IPv4Address


@dataclass(frozen=True)
class Masquerade:
    """Masquerade traffic from ``sources`` unless it goes to one of ``overlays``."""

    sources: frozenset[IPv4Network]
    overlays: frozenset[IPv4Network]


@dataclass(frozen=True)
class LocalOverlay:
    """One overlay this agent is a member of, as the master allocated it."""

    name: str
    subnet: IPv4Network | None
    mesos_bridge: Bridge | None
    docker_bridge: Bridge | None
    record: Mapping[str, Any] = field(compare=False, hash=False, repr=False)


@dataclass(frozen=True)
class DesiredNet:
    vtep: Vtep | None
    bridges: frozenset[Bridge]
    neighbours: frozenset[Neighbour]
    fdb: frozenset[FdbEntry]
    routes: frozenset[Route]
    masquerade: Masquerade | None
    overlays: tuple[LocalOverlay, ...]
    # Bridges another manager still uses (a Docker network's, see docker.py): never deleted
    # here, even when no overlay wants them any more.
    held: frozenset[str] = frozenset()
    # Which networks may reach which (the nftables sets of firewall.py), cluster-wide.
    isolation: Isolation = NONE

    @property
    def forwarding(self) -> bool:
        return bool(self.bridges)

    def route_overlay(self, route: Route) -> str | None:
        """Which local overlay a peer route belongs to (for status attribution): the one whose
        address space holds the route's destination, a block of another agent."""
        for overlay in self.overlays:
            space = _info_net(overlay) or overlay.subnet
            if space is not None and route.dst.subnet_of(space):
                return overlay.name
        return None


def desired(
    state: Mapping[str, Any], options: AgentOptions, underlay_mtu: int | None
) -> DesiredNet | None:
    """The kernel objects wanted for ``options.ip``; ``None`` if the state has no record for us."""
    agents = _agents(state)
    mine = agents.get(options.ip)
    if mine is None:
        return None
    overlays = _own_overlays(mine)
    vtep = _vtep(overlays, options, underlay_mtu)
    local = tuple(_local_overlay(o, options, vtep) for o in overlays)
    bridges = frozenset(b for lo in local for b in (lo.mesos_bridge, lo.docker_bridge) if b)
    neighbours, fdb, routes = _peers(agents, options.ip, local, vtep)
    return DesiredNet(
        vtep=vtep,
        bridges=bridges,
        neighbours=neighbours,
        fdb=fdb,
        routes=routes,
        masquerade=_masquerade(state, local),
        overlays=local,
        isolation=isolation(state.get("network")),
    )


def overlay_mtu(backend: Mapping[str, Any], underlay_mtu: int | None) -> int:
    """``vtep_mtu`` if the master configured one, else the underlay MTU minus VXLAN overhead."""
    configured = backend.get("vtep_mtu")
    if isinstance(configured, int) and not isinstance(configured, bool) and configured > 0:
        return configured
    return (underlay_mtu or DEFAULT_UNDERLAY_MTU) - VXLAN_OVERHEAD


def _agents(state: Mapping[str, Any]) -> dict[IPv4Address, Mapping[str, Any]]:
    records = state.get("agents", [])
    if not isinstance(records, list):
        raise StateError("'agents' must be a list")
    agents: dict[IPv4Address, Mapping[str, Any]] = {}
    for record in records:
        ip = ipv4(record.get("ip")) if isinstance(record, Mapping) else None
        if ip is not None and ip not in agents:
            agents[ip] = record
    return agents


def _own_overlays(record: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    overlays = record.get("overlays", [])
    if not isinstance(overlays, list) or not all(isinstance(o, Mapping) for o in overlays):
        raise StateError(f"agent {record.get('ip')}: 'overlays' must be a list of objects")
    return sorted(overlays, key=lambda o: str(_info(o).get("name", "")))


def _vtep(
    overlays: Sequence[Mapping[str, Any]], options: AgentOptions, underlay_mtu: int | None
) -> Vtep | None:
    for overlay in overlays:
        backend = _vxlan(overlay)
        if backend is None:
            continue
        try:
            address = IPv4Interface(str(backend["vtep_ip"]))
            mac = parse_mac(str(backend["vtep_mac"]))
        except (KeyError, ValueError) as e:
            raise StateError(f"our VXLAN backend is malformed: {backend!r}") from e
        return Vtep(
            name=str(backend.get("vtep_name", VTEP_NAME)),
            vni=int(backend.get("vni", VNI)),
            port=options.vxlan_port,
            mac=mac,
            address=address,
            mtu=overlay_mtu(backend, underlay_mtu),
        )
    return None


def _local_overlay(
    overlay: Mapping[str, Any], options: AgentOptions, vtep: Vtep | None
) -> LocalOverlay:
    name = str(_info(overlay).get("name", ""))
    if not name:
        raise StateError(f"one of our overlays has no name: {overlay!r}")
    subnet = ipv4_net(overlay.get("subnet"))
    mtu = vtep.mtu if vtep is not None else DEFAULT_UNDERLAY_MTU - VXLAN_OVERHEAD
    mesos = _bridge(overlay, "mesos_bridge", name, mtu) if options.mesos_bridge else None
    docker = _bridge(overlay, "docker_bridge", name, mtu) if options.docker_bridge else None
    return LocalOverlay(name, subnet, mesos, docker, overlay)


def _bridge(overlay: Mapping[str, Any], key: str, name: str, mtu: int) -> Bridge | None:
    spec = overlay.get(key)
    if not isinstance(spec, Mapping):
        return None
    half = ipv4_net(spec.get("ip"))
    if half is None or half.num_addresses < 4:
        return None
    gateway = IPv4Interface((half.network_address + 1, half.prefixlen))
    return Bridge(name=str(spec.get("name", "")), overlay=name, gateway=gateway, mtu=mtu)


def _peers(
    agents: Mapping[IPv4Address, Mapping[str, Any]],
    me: IPv4Address,
    local: Sequence[LocalOverlay],
    vtep: Vtep | None,
) -> tuple[frozenset[Neighbour], frozenset[FdbEntry], frozenset[Route]]:
    if vtep is None:
        return frozenset(), frozenset(), frozenset()
    shared = {lo.name: _info_net(lo) for lo in local if lo.subnet is not None}
    claims = Claims(n for lo in local for n in _own_nets(lo))
    own_ip = vtep.address.ip  # a property that builds a new address on every call
    neighbours: dict[IPv4Address, Neighbour] = {}
    fdb: dict[str, FdbEntry] = {}
    routes: list[Route] = []
    for ip in sorted(agents, key=int):
        if ip == me:
            continue
        peer = _peer(agents[ip], shared, vtep)
        if peer is None:
            continue
        vtep_ip, mac, nets = peer
        if vtep_ip in neighbours or mac in fdb or vtep_ip == own_ip or mac == vtep.mac:
            continue
        fresh = [n for n in nets if not claims.overlaps(n)]
        if not fresh:
            continue
        neighbours[vtep_ip] = Neighbour(vtep_ip, mac)
        fdb[mac] = FdbEntry(mac, ip)
        routes.extend(Route(n, vtep_ip) for n in fresh)
        for n in fresh:
            claims.add(n)
    return frozenset(neighbours.values()), frozenset(fdb.values()), frozenset(routes)


def _own_nets(overlay: LocalOverlay) -> Iterable[IPv4Network]:
    if overlay.subnet is not None:
        yield overlay.subnet


def _peer(
    record: Mapping[str, Any], shared: Mapping[str, IPv4Network | None], vtep: Vtep
) -> tuple[IPv4Address, str, list[IPv4Network]] | None:
    """(VTEP IP, VTEP MAC, subnets of shared overlays) of a remote record, or None if unusable.

    ``shared``: our overlays (with a subnet) by name, each with its configured network if any.
    """
    overlays = record.get("overlays")
    if not isinstance(overlays, list):
        return None
    backend: Mapping[str, Any] | None = None
    nets: list[IPv4Network] = []
    for overlay in overlays:
        if not isinstance(overlay, Mapping):
            continue
        name = str(_info(overlay).get("name", ""))
        subnet = ipv4_net(overlay.get("subnet"))
        if name not in shared or subnet is None:
            continue
        if not within(subnet, shared[name] or subnet):
            continue
        backend = backend or _vxlan(overlay)
        nets.append(subnet)
    if backend is None or not nets:
        return None
    try:
        address = interface(str(backend["vtep_ip"]))
        mac = parse_mac(str(backend["vtep_mac"]))
    except (KeyError, ValueError):
        return None
    ip = address.ip
    if ip not in vtep.address.network:
        return None
    return ip, mac, nets


def _info_net(overlay: LocalOverlay) -> IPv4Network | None:
    return ipv4_net(_info(overlay.record).get("subnet"))


def _masquerade(state: Mapping[str, Any], local: Sequence[LocalOverlay]) -> Masquerade | None:
    sources = frozenset(
        net
        for lo in local
        if lo.mesos_bridge or lo.docker_bridge
        for net in [_info_net(lo)]
        if net is not None
    )
    if not sources:
        return None
    network = state.get("network")
    configured = network.get("overlays", []) if isinstance(network, Mapping) else []
    overlays = {
        net
        for o in configured
        if isinstance(o, Mapping)
        for net in [ipv4_net(o.get("subnet"))]
        if net is not None
    }
    return Masquerade(sources=sources, overlays=frozenset(overlays | sources))


def _info(overlay: Mapping[str, Any]) -> Mapping[str, Any]:
    info = overlay.get("info")
    return info if isinstance(info, Mapping) else {}


def _vxlan(overlay: Mapping[str, Any]) -> Mapping[str, Any] | None:
    backend = overlay.get("backend")
    vxlan = backend.get("vxlan") if isinstance(backend, Mapping) else None
    return vxlan if isinstance(vxlan, Mapping) else None
