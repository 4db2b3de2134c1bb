"""PURE: the cluster state (DC/OS shape) + who I am -> the kernel objects this agent wants.

Input is the document the masters serve (``{"network": {...}, "agents": [record, ...]}``, see
docs/api.md); output is a ``DesiredNet`` of frozen values. Nothing here does I/O.

Rules (DC/OS recipe, docs/dcos-overlay.md "The agent's work", plus ours), for both families (dual stack):
- one ``vtep1024`` (VNI 1024, our UDP port, learning off) with the VTEP MAC, ``vtep_ip/prefix``
  and, when the master gave one, ``vtep_ip6/prefix``; MTU = ``vtep_mtu`` if configured, else the
  underlay MTU minus 50 (the underlay is IPv4: the overhead is the same for both families);
- per local overlay with bridges: ``m-<name>``/``d-<name>`` with the first host address of each
  half as gateway (``ip`` and/or ``ip6``), the overlay MTU, and forwarding on for each family used;
- per remote agent sharing an overlay with us: one FDB entry, a neighbour per family and a route
  per shared overlay and family (``peers``);
- masquerade from our overlays' address spaces (both families) to anything that is not an overlay
  address space.
- isolation between the cluster's networks (``isolation``), from the state's network list.

A malformed or conflicting *remote* record is skipped (one bad peer must not stop the data plane);
a malformed record of our own raises ``StateError``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Interface, IPv6Interface
from typing import Any

# Re-exported: bench/agent_reconcile.py resets the parser memos through this module.
from overlay_agent.addresses import forget_parsed as forget_parsed  # noqa: PLC0414
from overlay_agent.addresses import ipv4, ipv4_net, ipv6_net, within
from overlay_agent.addresses import mac as parse_mac
from overlay_agent.errors import StateError
from overlay_agent.isolation import NONE, Isolation, isolation

# The value types, re-exported: the rest of the agent imports them from here.
from overlay_agent.kernel_objects import Address as Address  # noqa: PLC0414
from overlay_agent.kernel_objects import Bridge as Bridge  # noqa: PLC0414
from overlay_agent.kernel_objects import FdbEntry as FdbEntry  # noqa: PLC0414
from overlay_agent.kernel_objects import Interface as Interface  # noqa: PLC0414
from overlay_agent.kernel_objects import LocalOverlay as LocalOverlay  # noqa: PLC0414
from overlay_agent.kernel_objects import Masquerade as Masquerade  # noqa: PLC0414
from overlay_agent.kernel_objects import Neighbour as Neighbour  # noqa: PLC0414
from overlay_agent.kernel_objects import Network as Network  # noqa: PLC0414
from overlay_agent.kernel_objects import Route as Route  # noqa: PLC0414
from overlay_agent.kernel_objects import Vtep as Vtep  # noqa: PLC0414
from overlay_agent.peers import info, info_net, info_net6, peers, vxlan
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
        return any(b.gateway is not None for b in self.bridges)

    @property
    def forwarding6(self) -> bool:
        return any(b.gateway6 is not None for b in self.bridges)

    def route_overlay(self, route: Route) -> str | None:
        """Which local overlay a peer route belongs to (for status attribution): the one whose
        address space holds the route's destination, a block of another agent."""
        for overlay in self.overlays:
            space: Network | None
            if route.dst.version == 4:
                space = info_net(overlay.record) or overlay.subnet
            else:
                space = info_net6(overlay.record) or overlay.subnet6
            if space is not None and within(route.dst, space):
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
    neighbours, fdb, routes = peers(agents, options.ip, local, vtep)
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
    return sorted(overlays, key=lambda o: str(info(o).get("name", "")))


def _vtep(
    overlays: Sequence[Mapping[str, Any]], options: AgentOptions, underlay_mtu: int | None
) -> Vtep | None:
    for overlay in overlays:
        backend = vxlan(overlay)
        if backend is None:
            continue
        try:
            address = IPv4Interface(str(backend["vtep_ip"]))
            mac = parse_mac(str(backend["vtep_mac"]))
            v6 = backend.get("vtep_ip6")
            address6 = IPv6Interface(str(v6)) if v6 is not None else None
        except (KeyError, ValueError) as e:
            raise StateError(f"our VXLAN backend is malformed: {backend!r}") from e
        return Vtep(
            name=str(backend.get("vtep_name", VTEP_NAME)),
            vni=int(backend.get("vni", VNI)),
            port=options.vxlan_port,
            mac=mac,
            address=address,
            mtu=overlay_mtu(backend, underlay_mtu),
            address6=address6,
        )
    return None


def _local_overlay(
    overlay: Mapping[str, Any], options: AgentOptions, vtep: Vtep | None
) -> LocalOverlay:
    name = str(info(overlay).get("name", ""))
    if not name:
        raise StateError(f"one of our overlays has no name: {overlay!r}")
    subnet = ipv4_net(overlay.get("subnet"))
    subnet6 = ipv6_net(overlay.get("subnet6"))
    mtu = vtep.mtu if vtep is not None else DEFAULT_UNDERLAY_MTU - VXLAN_OVERHEAD
    mesos = _bridge(overlay, "mesos_bridge", name, mtu) if options.mesos_bridge else None
    docker = _bridge(overlay, "docker_bridge", name, mtu) if options.docker_bridge else None
    return LocalOverlay(name, subnet, mesos, docker, overlay, subnet6)


def _bridge(overlay: Mapping[str, Any], key: str, name: str, mtu: int) -> Bridge | None:
    """The bridge of one half: its gateways are the first host of the half in each family."""
    spec = overlay.get(key)
    if not isinstance(spec, Mapping):
        return None
    half = ipv4_net(spec.get("ip"))
    half6 = ipv6_net(spec.get("ip6"))
    gateway = gateway6 = None
    if half is not None and half.num_addresses >= 4:
        gateway = IPv4Interface((half.network_address + 1, half.prefixlen))
    if half6 is not None and half6.num_addresses >= 4:
        gateway6 = IPv6Interface((half6.network_address + 1, half6.prefixlen))
    if gateway is None and gateway6 is None:
        return None
    return Bridge(str(spec.get("name", "")), name, gateway, mtu, gateway6)


def _masquerade(state: Mapping[str, Any], local: Sequence[LocalOverlay]) -> Masquerade | None:
    sources = frozenset(
        net
        for lo in local
        if lo.mesos_bridge or lo.docker_bridge
        for net in (info_net(lo.record), info_net6(lo.record))
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
        for net in (ipv4_net(o.get("subnet")), ipv6_net(o.get("subnet6")))
        if net is not None
    }
    return Masquerade(sources=sources, overlays=frozenset(overlays | sources))
