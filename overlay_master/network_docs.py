"""The documents of the network API (pure): each virtual network with its agents and capacity.

Our own documents (``overlay_wire.contract.VirtualNetworkDoc``...), next to DC/OS's state
document, which stays exactly DC/OS's. Built from a snapshot: block use is counted from the
agents' records, so every replica at the same revision answers the same.
"""

from __future__ import annotations

from collections.abc import Iterable

from overlay_master import addressing
from overlay_master.encoding import Snapshot
from overlay_master.network import OverlayConfig
from overlay_master.records import AgentRecord
from overlay_wire.contract import (
    BlockUseDoc,
    NetworkCapacityDoc,
    NetworkListDoc,
    VirtualNetworkDoc,
)


def network_list(snap: Snapshot) -> NetworkListDoc:
    assert snap.network is not None
    docs = [network_doc(o, snap.agents) for o in snap.network.overlays]
    return {"networks": docs, "revision": snap.revision}


def network_doc(config: OverlayConfig, agents: Iterable[AgentRecord]) -> VirtualNetworkDoc:
    holders = [(r.ip, o) for r in agents if (o := r.overlay(config.name)) is not None]
    capacity: NetworkCapacityDoc = {}
    if config.subnet is not None and config.prefix is not None:
        total = addressing.block_pool_size(config.subnet, config.prefix)
        capacity["blocks"] = _use(total, sum(1 for _, o in holders if o.block is not None))
    if config.subnet6 is not None and config.prefix6 is not None:
        total6 = addressing.block_pool_size(config.subnet6, config.prefix6)
        capacity["blocks6"] = _use(total6, sum(1 for _, o in holders if o.block6 is not None))
    doc: VirtualNetworkDoc = {
        "name": config.name,
        "enabled": config.enabled,
        "allow_from": list(config.allow_from),
        "agents": [ip for ip, _ in holders],
        "capacity": capacity,
    }
    if config.subnet is not None and config.prefix is not None:
        doc["subnet"], doc["prefix"] = str(config.subnet), config.prefix
    if config.subnet6 is not None and config.prefix6 is not None:
        doc["subnet6"], doc["prefix6"] = str(config.subnet6), config.prefix6
    return doc


def _use(total: int, used: int) -> BlockUseDoc:
    return {"total": total, "used": used, "free": total - used}
