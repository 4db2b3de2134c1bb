"""The DC/OS JSON shape of ``/overlay-master/state`` (docs/dcos-overlay.md), as plain dicts.

Keys are emitted in alphabetical order (``dumps`` sorts them) and optional fields are omitted when
unset, as stout's protobuf-to-JSON did. Two additions, both omitted when empty so that a healthy
cluster's document is byte-for-byte DC/OS's: a status ``error`` text (DC/OS dropped it on the
master) and ``skipped_overlays`` on an agent whose overlay could not be allocated (DC/OS only
logged that).
"""

from __future__ import annotations

import json
from ipaddress import ip_network
from typing import Any, cast

from overlay_master import addressing
from overlay_master.allocator import AgentOverlay, AgentRecord
from overlay_master.network import NetworkConfig, OverlayConfig, to_plain
from overlay_wire import contract


def network_json(net: NetworkConfig) -> contract.NetworkDoc:
    return cast(contract.NetworkDoc, to_plain(net))


def agent_json(record: AgentRecord, net: NetworkConfig) -> dict[str, Any]:
    backend = _backend(record, net)
    overlays = []
    for overlay in record.overlays:
        config = net.overlay(overlay.name)
        if config is not None:
            overlays.append(_overlay(overlay, config, backend))
    doc: dict[str, Any] = {"ip": record.ip, "overlays": overlays}
    if record.skipped:
        doc["skipped_overlays"] = [
            {"name": name, "reason": reason, "error": _skip_text(name, reason, net)}
            for name, reason in record.skipped
        ]
    return doc


def state_json(agents: list[dict[str, Any]], net: NetworkConfig) -> dict[str, Any]:
    return {"agents": agents, "network": network_json(net)}


def dumps(doc: object) -> bytes:
    """Compact, key-sorted JSON bytes: the same document always gives the same bytes."""
    return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()


def _backend(record: AgentRecord, net: NetworkConfig) -> dict[str, Any]:
    vxlan: dict[str, Any] = {
        "vni": contract.VNI,
        "vtep_ip": record.vtep_ip,
        "vtep_mac": record.vtep_mac,
        "vtep_name": contract.VTEP_NAME,
    }
    if record.vtep_ip6 is not None:
        vxlan["vtep_ip6"] = record.vtep_ip6
    if net.vtep_mtu is not None:
        vxlan["vtep_mtu"] = net.vtep_mtu
    return {"vxlan": vxlan}


def _overlay(
    overlay: AgentOverlay, config: OverlayConfig, backend: dict[str, Any]
) -> dict[str, Any]:
    info: dict[str, Any] = {"name": config.name}
    if config.subnet is not None:
        info["subnet"] = str(config.subnet)
        info["prefix"] = config.prefix
    if config.subnet6 is not None:
        info["subnet6"] = str(config.subnet6)
        info["prefix6"] = config.prefix6
    doc: dict[str, Any] = {"backend": backend, "info": info}
    if overlay.subnet is not None:
        doc["subnet"] = overlay.subnet
    if overlay.subnet6 is not None:
        doc["subnet6"] = overlay.subnet6
    if overlay.mesos_bridge:
        doc["mesos_bridge"] = _bridge(contract.mesos_bridge_name(config.name), overlay, lower=True)
    if overlay.docker_bridge:
        doc["docker_bridge"] = _bridge(
            contract.docker_bridge_name(config.name), overlay, lower=False
        )
    if overlay.status is not None:
        state = {"status": overlay.status}
        if overlay.error:
            state["error"] = overlay.error
        doc["state"] = state
    return doc


def _bridge(name: str, overlay: AgentOverlay, lower: bool) -> dict[str, Any]:
    bridge: dict[str, Any] = {"name": name}
    if overlay.subnet is not None:
        bridge["ip"] = str(addressing.halves(ip_network(overlay.subnet))[0 if lower else 1])
    if overlay.subnet6 is not None:
        bridge["ip6"] = str(addressing.halves(ip_network(overlay.subnet6))[0 if lower else 1])
    return bridge


def _skip_text(name: str, reason: str, net: NetworkConfig) -> str:
    config = net.overlay(name)
    if config is None:
        return reason
    if reason == "subnet6_exhausted":
        return f"no free /{config.prefix6} block left in overlay {name} ({config.subnet6})"
    return f"no free /{config.prefix} block left in overlay {name} ({config.subnet})"
