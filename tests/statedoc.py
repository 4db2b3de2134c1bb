"""Cluster-state documents in the master's DC/OS shape, for agent tests and benchmarks.

Written out by hand the way DC/OS's worked example allocates them (docs/dcos-overlay.md): the
n-th registration holds VTEP 44.128.0.<n>/20, MAC 70:b3:d5:80:00:<n>, block n - 1 of each
overlay, lower half m-<name>, upper half d-<name>. An overlay given with an IPv6 space too
(``DCOS6``: name, subnet, prefix, subnet6, prefix6; subnet and prefix may be None) makes the
network dual stack: every agent also holds VTEP fd01:a::<n>/64 and IPv6 block n - 1, halved the
same way. Hand-written on purpose: agent tests also need
records the master would never produce (clashing VTEPs, malformed fields). So that they cannot
drift from what the master really sends, tests/unit/test_contract.py checks that these documents
equal the master's own output for the same registrations.
"""

from __future__ import annotations

from collections.abc import Sequence
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_network
from typing import Any

from overlay_wire import contract

VTEP_SUBNET = "44.128.0.0/20"
VTEP_SUBNET6 = "fd01:a::/64"
OUI = "70:B3:D5:00:00:00"
DCOS = ("dcos", "9.0.0.0/8", 26)
DCOS6 = ("dcos", "9.0.0.0/8", 26, "fd01:b::/64", 80)  # dual stack
Overlay = Sequence[Any]  # (name, subnet, prefix) or (name, subnet, prefix, subnet6, prefix6)


def block(subnet: str, prefix: int, slot: int) -> IPv4Network:
    net = IPv4Network(subnet)
    size = 1 << (32 - prefix)
    return IPv4Network((int(net.network_address) + slot * size, prefix))


def block6(subnet: str, prefix: int, slot: int) -> IPv6Network:
    net = IPv6Network(subnet)
    size = 1 << (128 - prefix)
    return IPv6Network((int(net.network_address) + slot * size, prefix))


def vtep_ip(n: int) -> IPv4Address:
    return IPv4Address("44.128.0.0") + n


def vtep_ip6(n: int) -> IPv6Address:
    return IPv6Address("fd01:a::") + n


def dual(overlays: Sequence[Overlay]) -> bool:
    return any(len(o) > 3 for o in overlays)


def vtep_mac(n: int) -> str:
    low = int(vtep_ip(n)) & 0xFFFFFF
    return "70:b3:d5:" + ":".join(f"{(low >> s) & 0xFF:02x}" for s in (16, 8, 0))


def record(
    ip: str,
    n: int,
    overlays: Sequence[Overlay] | None = None,
    bridges: bool = True,
    vtep_mtu: int | None = None,
) -> dict[str, Any]:
    """Agent ``ip`` holding VTEP number ``n`` (1..) and block ``n - 1`` of each overlay (the
    n-th registration in DC/OS's lowest-first order)."""
    overlays = overlays or [DCOS]
    vxlan: dict[str, Any] = {
        "vni": contract.VNI,
        "vtep_ip": f"{vtep_ip(n)}/20",
        "vtep_mac": vtep_mac(n),
        "vtep_name": contract.VTEP_NAME,
    }
    if dual(overlays):
        vxlan["vtep_ip6"] = f"{vtep_ip6(n)}/64"
    if vtep_mtu is not None:
        vxlan["vtep_mtu"] = vtep_mtu
    docs = []
    for name, subnet, prefix, *v6 in overlays:
        doc: dict[str, Any] = {
            "backend": {"vxlan": dict(vxlan)},
            "info": _info(name, subnet, prefix, v6),
        }
        mesos: dict[str, Any] = {"name": contract.mesos_bridge_name(name)}
        docker: dict[str, Any] = {"name": contract.docker_bridge_name(name)}
        for key, agent_net in (
            ("", block(subnet, prefix, n - 1) if subnet else None),
            ("6", block6(v6[0], v6[1], n - 1) if v6 else None),
        ):
            if agent_net is None:
                continue
            lower, upper = agent_net.subnets(prefixlen_diff=1)
            doc["subnet" + key] = str(agent_net)
            mesos["ip" + key], docker["ip" + key] = str(lower), str(upper)
        if bridges:
            doc["mesos_bridge"], doc["docker_bridge"] = mesos, docker
        docs.append(doc)
    return {"ip": ip, "overlays": docs}


def _info(name: str, subnet: str | None, prefix: int | None, v6: list[Any]) -> dict[str, Any]:
    info: dict[str, Any] = {"name": name}
    if subnet is not None:
        info["subnet"], info["prefix"] = subnet, prefix
    if v6:
        info["subnet6"], info["prefix6"] = str(ip_network(v6[0])), v6[1]
    return info


def state(
    agents: list[dict[str, Any]],
    overlays: Sequence[Overlay] | None = None,
    vtep_mtu: int | None = None,
) -> dict[str, Any]:
    overlays = overlays or [DCOS]
    network: dict[str, Any] = {
        "overlays": [{"enabled": True, **_info(o[0], o[1], o[2], list(o[3:]))} for o in overlays],
        "vtep_mac_oui": OUI,
        "vtep_subnet": VTEP_SUBNET,
    }
    if dual(overlays):
        network["vtep_subnet6"] = VTEP_SUBNET6
    if vtep_mtu is not None:
        network["vtep_mtu"] = vtep_mtu
    return {"agents": agents, "network": network}
