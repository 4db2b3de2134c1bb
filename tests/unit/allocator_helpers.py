"""Helpers shared by the allocator tests: build states and read their allocations back."""

from __future__ import annotations

import ipaddress
from typing import Any

from overlay_master import allocator as A
from overlay_master.validation import parse_network


def network(**changes: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "vtep_subnet": "44.128.0.0/20",
        "vtep_mac_oui": "70:B3:D5:00:00:00",
        "overlays": [{"name": "dcos", "subnet": "9.0.0.0/8", "prefix": 26}],
    }
    doc.update(changes)
    parse_network(doc)  # fail early on a bad test config
    return doc


def state_for(doc: dict[str, Any]) -> A.ClusterState:
    state = A.ClusterState()
    result = state.apply(A.configure(doc))
    assert isinstance(result, A.Configured), result
    return state


def registered(state: A.ClusterState, ip: str, bridges: bool = True) -> A.AgentRecord:
    result = state.apply(A.register(ip, bridges, bridges))
    assert isinstance(result, A.Registered), result
    return result.agent


def check_invariants(state: A.ClusterState) -> None:
    """No two agents share a block, VTEP IP or MAC; everything is inside its pool."""
    assert state.network is not None
    net = state.network
    vtep_ips: set[str] = set()
    macs: set[str] = set()
    blocks: set[str] = set()
    for record in state.agents.values():
        address = ipaddress.ip_interface(record.vtep_ip)
        assert address.network == net.vtep_subnet
        assert address.ip not in (
            net.vtep_subnet.network_address,
            net.vtep_subnet.broadcast_address,
        )
        assert record.vtep_ip not in vtep_ips and record.vtep_mac not in macs
        vtep_ips.add(record.vtep_ip)
        macs.add(record.vtep_mac)
        for overlay in record.overlays:
            config = net.overlay(overlay.name)
            assert config is not None
            for text, space in ((overlay.subnet, config.subnet), (overlay.subnet6, config.subnet6)):
                if text is None:
                    continue
                block = ipaddress.ip_network(text)
                assert space is not None and block.subnet_of(space)  # type: ignore[arg-type]
                assert text not in blocks
                blocks.add(text)
    assert state.vteps is not None and state.vteps.used == len(state.agents)
    # No agent holds a block of a network that is not live, and pools exist for live ones only.
    live = set(net.names)
    assert set(state.blocks) <= live and set(state.blocks6) <= live
    for name, pool in state.blocks.items():
        held = sum(
            1 for r in state.agents.values() if (o := r.overlay(name)) and o.block is not None
        )
        assert pool.used == held, name
    for gone in state.departed.values():
        assert {b[0] for b in gone.blocks} <= live
    # Containers are reported only by registered agents, only on networks they hold.
    assert set(state.containers) <= set(state.agents)
    for ip, listed in state.containers.items():
        assert {c.network for c in listed} <= {o.name for o in state.agents[ip].overlays}
