"""Cluster-state documents in the master's DC/OS shape, for agent tests and benchmarks.

Written out by hand the way DC/OS's worked example allocates them (docs/dcos-overlay.md): the
n-th registration holds VTEP 44.128.0.<n>/20, MAC 70:b3:d5:80:00:<n>, block n - 1 of each
overlay, lower half m-<name>, upper half d-<name>. Hand-written on purpose: agent tests also need
records the master would never produce (clashing VTEPs, malformed fields). So that they cannot
drift from what the master really sends, tests/unit/test_contract.py checks that these documents
equal the master's own output for the same registrations.
"""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network
from typing import Any

from overlay_wire import contract

VTEP_SUBNET = "44.128.0.0/20"
OUI = "70:B3:D5:00:00:00"
DCOS = ("dcos", "9.0.0.0/8", 26)


def block(subnet: str, prefix: int, slot: int) -> IPv4Network:
    net = IPv4Network(subnet)
    size = 1 << (32 - prefix)
    return IPv4Network((int(net.network_address) + slot * size, prefix))


def vtep_ip(n: int) -> IPv4Address:
    return IPv4Address("44.128.0.0") + n


def vtep_mac(n: int) -> str:
    low = int(vtep_ip(n)) & 0xFFFFFF
    return "70:b3:d5:" + ":".join(f"{(low >> s) & 0xFF:02x}" for s in (16, 8, 0))


def record(
    ip: str,
    n: int,
    overlays: list[tuple[str, str, int]] | None = None,
    bridges: bool = True,
    vtep_mtu: int | None = None,
) -> dict[str, Any]:
    """Agent ``ip`` holding VTEP number ``n`` (1..) and block ``n - 1`` of each overlay (the
    n-th registration in DC/OS's lowest-first order)."""
    vxlan: dict[str, Any] = {
        "vni": contract.VNI,
        "vtep_ip": f"{vtep_ip(n)}/20",
        "vtep_mac": vtep_mac(n),
        "vtep_name": contract.VTEP_NAME,
    }
    if vtep_mtu is not None:
        vxlan["vtep_mtu"] = vtep_mtu
    docs = []
    for name, subnet, prefix in overlays or [DCOS]:
        agent_net = block(subnet, prefix, n - 1)
        lower, upper = agent_net.subnets(prefixlen_diff=1)
        doc: dict[str, Any] = {
            "backend": {"vxlan": dict(vxlan)},
            "info": {"name": name, "prefix": prefix, "subnet": subnet},
            "subnet": str(agent_net),
        }
        if bridges:
            doc["mesos_bridge"] = {"ip": str(lower), "name": contract.mesos_bridge_name(name)}
            doc["docker_bridge"] = {"ip": str(upper), "name": contract.docker_bridge_name(name)}
        docs.append(doc)
    return {"ip": ip, "overlays": docs}


def state(
    agents: list[dict[str, Any]],
    overlays: list[tuple[str, str, int]] | None = None,
    vtep_mtu: int | None = None,
) -> dict[str, Any]:
    network: dict[str, Any] = {
        "overlays": [
            {"enabled": True, "name": name, "prefix": prefix, "subnet": subnet}
            for name, subnet, prefix in overlays or [DCOS]
        ],
        "vtep_mac_oui": OUI,
        "vtep_subnet": VTEP_SUBNET,
    }
    if vtep_mtu is not None:
        network["vtep_mtu"] = vtep_mtu
    return {"agents": agents, "network": network}
