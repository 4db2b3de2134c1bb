"""The documents of the network and container API (pure): each virtual network with its agents,
their container addresses per bridge half, and the containers agents report.

Our own documents (``overlay_wire.contract``), next to DC/OS's state document, which stays exactly
DC/OS's. Built from a snapshot, so every replica at the same revision answers the same. Capacity
is what the seed's users could not see: per agent and bridge half, how many container addresses
there are, how many are used (reported containers) and how many are left, before a launch fails.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from ipaddress import ip_network
from typing import TYPE_CHECKING

from overlay_master import addressing
from overlay_master.network import OverlayConfig
from overlay_master.records import AgentOverlay, AgentRecord, ContainerRecord
from overlay_wire.contract import (
    BlockUseDoc,
    ContainerDoc,
    ContainerListDoc,
    NetworkAgentDoc,
    NetworkCapacityDoc,
    NetworkListDoc,
    VirtualNetworkDoc,
)

if TYPE_CHECKING:  # encoding builds watch answers with container_doc
    from overlay_master.encoding import Snapshot

RESERVED_PER_HALF = 3  # network address, gateway (the bridge), broadcast


def network_list(snap: Snapshot) -> NetworkListDoc:
    assert snap.network is not None
    docs = [network_doc(o, snap.agents, snap.containers) for o in snap.network.overlays]
    return {"networks": docs, "revision": snap.revision}


def network_doc(
    config: OverlayConfig,
    agents: Sequence[AgentRecord],
    containers: Mapping[str, Sequence[ContainerRecord]],
) -> VirtualNetworkDoc:
    holders = [(r, o) for r in agents if (o := r.overlay(config.name)) is not None]
    members = [_member(r, o, containers.get(r.ip, ())) for r, o in holders]
    capacity: NetworkCapacityDoc = {}
    if config.subnet is not None and config.prefix is not None:
        total = addressing.block_pool_size(config.subnet, config.prefix)
        capacity["blocks"] = _use(total, sum(1 for _, o in holders if o.block is not None))
    if config.subnet6 is not None and config.prefix6 is not None:
        total6 = addressing.block_pool_size(config.subnet6, config.prefix6)
        capacity["blocks6"] = _use(total6, sum(1 for _, o in holders if o.block6 is not None))
    for half in ("mesos", "docker"):
        uses = [m[half] for m in members if half in m]
        if uses:
            capacity[half] = _use(sum(u["total"] for u in uses), sum(u["used"] for u in uses))
    doc: VirtualNetworkDoc = {
        "name": config.name,
        "enabled": config.enabled,
        "allow_from": list(config.allow_from),
        "agents": members,
        "containers": sum(m["containers"] for m in members),
        "capacity": capacity,
    }
    if config.subnet is not None and config.prefix is not None:
        doc["subnet"], doc["prefix"] = str(config.subnet), config.prefix
    if config.subnet6 is not None and config.prefix6 is not None:
        doc["subnet6"], doc["prefix6"] = str(config.subnet6), config.prefix6
    return doc


def container_list(
    snap: Snapshot, network: str | None = None, agent: str | None = None
) -> ContainerListDoc:
    found = [
        container_doc(ip, c)
        for ip, listed in snap.containers.items()
        if agent is None or ip == agent
        for c in listed
        if network is None or c.network == network
    ]
    return {"containers": found, "revision": snap.revision}


def container_doc(agent: str, c: ContainerRecord) -> ContainerDoc:
    doc: ContainerDoc = {"id": c.id, "network": c.network, "half": c.half, "agent": agent}
    for key in ("address", "address6", "name", "mac", "interface"):
        value = getattr(c, key)
        if value is not None:
            doc[key] = value
    return doc


def _member(
    record: AgentRecord, overlay: AgentOverlay, containers: Sequence[ContainerRecord]
) -> NetworkAgentDoc:
    mine = [c for c in containers if c.network == overlay.name]
    doc: NetworkAgentDoc = {"ip": record.ip, "containers": len(mine)}
    if overlay.subnet is not None:
        doc["subnet"] = overlay.subnet
        half_size = ip_network(overlay.subnet).num_addresses // 2
        total = max(half_size - RESERVED_PER_HALF, 0)
        for half, present in (("mesos", overlay.mesos_bridge), ("docker", overlay.docker_bridge)):
            if present:
                used = sum(1 for c in mine if c.half == half)
                doc[half] = _use(total, used)  # type: ignore[literal-required]
    if overlay.subnet6 is not None:
        doc["subnet6"] = overlay.subnet6
    if overlay.status is not None:
        doc["status"] = overlay.status
    if overlay.error:
        doc["error"] = overlay.error
    return doc


def _use(total: int, used: int) -> BlockUseDoc:
    return {"total": total, "used": used, "free": max(total - used, 0)}
