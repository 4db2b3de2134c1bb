"""Agent benchmark (issue 4, done-when a): a cold reconcile programming N peers in a fresh
namespace, next to ``ip -batch``/``bridge -batch`` programming the same objects in the same run;
plus the following no-change pass (which must write nothing).

Run alone: ``.venv/bin/python -m bench.agent_reconcile [--quick]`` (root; namespaces are removed).
"""

from __future__ import annotations

import sys
import tempfile
import time
from ipaddress import IPv4Address
from pathlib import Path
from typing import Any

from overlay_agent.cluster import ClusterState
from overlay_agent.desired import AgentOptions
from overlay_agent.nat import Nat
from overlay_agent.netlink import Kernel
from overlay_agent.reconciler import Reconciler, Settings
from tests.netns import statedoc
from tests.netns.topology import Bed, sh

ME = "10.0.0.1"


def underlay_ip(k: int) -> str:
    return f"10.{(k >> 16) & 255}.{(k >> 8) & 255}.{k & 255}"


def document(peers: int) -> dict[str, Any]:
    return statedoc.state([statedoc.record(underlay_ip(k), k) for k in range(1, peers + 2)])


def namespace(bed: Bed, name: str) -> str:
    ns = bed.netns(name)
    sh("ip", "-n", ns, "link", "add", "eth0", "type", "veth", "peer", "name", "eth1")
    sh("ip", "-n", ns, "addr", "add", f"{ME}/8", "dev", "eth0")
    sh("ip", "-n", ns, "link", "set", "eth0", "up")
    return ns


def agent_pass(bed: Bed, peers: int) -> tuple[float, float, int, int]:
    ns = namespace(bed, f"agent{peers}")
    settings = Settings(AgentOptions(ip=IPv4Address(ME)), ns, None, bed.root / "data")
    kernel = Kernel(ns, IPv4Address(ME))
    try:
        reconciler = Reconciler(settings, kernel, Nat(ns))
        state = ClusterState.from_document(document(peers), 1)
        start = time.perf_counter()
        cold = reconciler.reconcile(state)
        middle = time.perf_counter()
        again = reconciler.reconcile(state)
        end = time.perf_counter()
    finally:
        kernel.close()
    assert cold.converged and again.converged, (cold, again)
    return middle - start, end - middle, cold.writes, again.writes


def batch_pass(bed: Bed, peers: int) -> float:
    ns = namespace(bed, f"batch{peers}")
    links, fdb, routes = (
        [
            "link add vtep1024 address 70:b3:d5:80:00:01 mtu 1450 type vxlan id 1024 dstport 64000 nolearning",
            "link set vtep1024 up",
            "addr add 44.128.0.1/20 dev vtep1024",
            "link add m-dcos mtu 1450 type bridge",
            "link set m-dcos up",
            "addr add 9.0.0.1/27 dev m-dcos",
            "link add d-dcos mtu 1450 type bridge",
            "link set d-dcos up",
            "addr add 9.0.0.33/27 dev d-dcos",
        ],
        [],
        [],
    )
    for k in range(2, peers + 2):
        vtep, mac = statedoc.vtep_ip(k), statedoc.vtep_mac(k)
        links.append(f"neigh replace {vtep} lladdr {mac} dev vtep1024 nud permanent")
        fdb.append(f"fdb replace {mac} dev vtep1024 dst {underlay_ip(k)} self permanent")
        routes.append(
            f"route replace {statedoc.block('9.0.0.0/8', 26, k - 1)} via {vtep} dev vtep1024 proto 211"
        )
    files = []
    for name, lines in (("links", links), ("fdb", fdb), ("routes", routes)):
        path = bed.root / f"{name}-{peers}.batch"
        path.write_text("\n".join(lines) + "\n")
        files.append(path)
    start = time.perf_counter()
    sh("ip", "-n", ns, "-batch", str(files[0]))
    sh("bridge", "-n", ns, "-batch", str(files[1]))
    sh("ip", "-n", ns, "-batch", str(files[2]))
    sh("ip", "netns", "exec", ns, "sysctl", "-qw", "net.ipv4.ip_forward=1")
    return time.perf_counter() - start


def run(quick: bool = False) -> list[dict[str, str]]:
    rows = []
    with tempfile.TemporaryDirectory(prefix="agent-bench-") as tmp:
        bed = Bed(root=Path(tmp))
        try:
            for peers in (1000,) if quick else (1000, 4093):
                cold, idle, writes, idle_writes = agent_pass(bed, peers)
                batch = batch_pass(bed, peers)
                rows.append(
                    {
                        "key": f"agent_cold_reconcile_{peers}",
                        "benchmark": f"agent cold reconcile, {peers} peers (link, bridges, 3 objects/peer, nft)",
                        "result": f"{cold:.2f} s, {writes} writes",
                        "baseline": f"ip/bridge -batch {batch:.2f} s",
                        "ratio": f"{cold / batch:.1f}x",
                    }
                )
                rows.append(
                    {
                        "key": f"agent_idle_reconcile_{peers}",
                        "benchmark": f"agent no-change pass, {peers} peers (observe + plan)",
                        "result": f"{idle:.2f} s, {idle_writes} writes",
                        "target": "0 writes",
                        "met": idle_writes == 0,  # type: ignore[dict-item]
                    }
                )
        finally:
            bed.destroy()
    return rows


if __name__ == "__main__":
    for row in run(quick="--quick" in sys.argv):
        print(row)
