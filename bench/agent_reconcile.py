"""Agent benchmark (issue 4 done-when a, issue 7 item 6): reconcile passes of one agent in a fresh
namespace holding N peers, next to ``ip -batch``/``bridge -batch`` (+ ``nft -f`` for the egress
table) programming the same objects in a namespace of its own, in the same run.

Per run and size: a cold pass (VTEP, two bridges, forwarding, NAT table, 3 objects per peer),
several no-change passes (must write nothing), one peer removed, then that peer added back (must
write exactly one neighbour, one FDB entry and one route). The same with dual stack on (``DCOS6``:
an IPv6 VTEP address and bridge gateways, IPv6 forwarding, and per peer one FDB entry, two
neighbours and two routes; a peer added back is 5 writes). Agent and baseline runs alternate, and
each namespace is deleted as soon as it has been measured (the kernel's FIB keeps per-route state
whose lookups grow with every route in every namespace, which would tax whoever runs later).

Run alone: ``.venv/bin/python -m bench.agent_reconcile [--quick]`` (root; namespaces are removed).
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from ipaddress import IPv4Address
from pathlib import Path
from typing import Any, TypeVar

from bench.stats import median
from overlay_agent.cluster import ClusterState
from overlay_agent.desired import AgentOptions, desired, forget_parsed
from overlay_agent.firewall import Firewall, contents, render
from overlay_agent.netlink import Kernel
from overlay_agent.plan import plan
from overlay_agent.reconciler import Reconciler, Settings
from tests import statedoc
from tests.netns.topology import Bed, sh

ME = "10.0.0.1"
IDLE_PASSES = 5
T = TypeVar("T")


def underlay_ip(k: int) -> str:
    return f"10.{(k >> 16) & 255}.{(k >> 8) & 255}.{k & 255}"


def document(peers: int, dual: bool = False) -> dict[str, Any]:
    """Us (VTEP 1) and ``peers`` remote agents (VTEPs 2 .. peers + 1); ``dual``: dual stack."""
    overlays = [statedoc.DCOS6 if dual else statedoc.DCOS]
    records = [statedoc.record(underlay_ip(k), k, overlays) for k in range(1, peers + 2)]
    return statedoc.state(records, overlays)


def per_peer(dual: bool) -> Counter[str]:
    """The writes one added peer costs: one FDB entry, a neighbour and a route per family."""
    families = 2 if dual else 1
    return Counter(ReplaceFdb=1, ReplaceNeighbour=families, ReplaceRoute=families)


def namespace(bed: Bed, name: str) -> str:
    ns = bed.netns(name)
    sh("ip", "-n", ns, "link", "add", "eth0", "type", "veth", "peer", "name", "eth1")
    sh("ip", "-n", ns, "addr", "add", f"{ME}/8", "dev", "eth0")
    sh("ip", "-n", ns, "link", "set", "eth0", "up")
    return ns


def drop(bed: Bed, ns: str) -> None:
    sh("ip", "netns", "del", ns)
    bed.namespaces.remove(ns)


def timed(call: Callable[[], T]) -> tuple[float, T]:
    start = time.perf_counter()
    result = call()
    return time.perf_counter() - start, result


@dataclass
class AgentRun:
    cold: float
    cold_writes: int
    idle: list[float] = field(default_factory=list)
    idle_writes: int = 0
    removed: float = 0.0
    removed_writes: int = 0
    added: float = 0.0
    added_writes: int = 0
    added_ops: Counter[str] = field(default_factory=Counter)


def agent_run(bed: Bed, peers: int, run: int, dual: bool = False) -> AgentRun:
    ns = namespace(bed, f"agent{peers}-{run}{'-6' if dual else ''}")
    options = AgentOptions(ip=IPv4Address(ME))
    settings = Settings(options, ns, None, bed.root / "data")
    kernel = Kernel(ns, IPv4Address(ME))
    full = ClusterState.from_document(document(peers, dual), 1)
    fewer = ClusterState.from_document(document(peers - 1, dual), 2)  # the last peer is gone
    back = ClusterState.from_document(document(peers, dual), 3)  # ... and back
    try:
        reconciler = Reconciler(settings, kernel, Firewall(ns))
        forget_parsed()  # as in a fresh agent process
        seconds, cold = timed(lambda: reconciler.reconcile(full))
        assert cold.converged, cold
        check_objects(ns, peers, dual)
        result = AgentRun(seconds, cold.writes)
        for _ in range(IDLE_PASSES):
            seconds, idle = timed(lambda: reconciler.reconcile(full))
            assert idle.converged, idle
            result.idle.append(seconds)
            result.idle_writes += idle.writes
        result.removed, removed = timed(lambda: reconciler.reconcile(fewer))
        result.removed_writes = removed.writes
        seen = kernel.observe()  # what the next pass will plan, by operation type
        want = desired(back.document(), options, seen.underlay_mtu)
        assert want is not None
        result.added_ops = Counter(type(op).__name__ for op in plan(want, seen))
        result.added, added = timed(lambda: reconciler.reconcile(back))
        assert removed.converged and added.converged, (removed, added)
        result.added_writes = added.writes
        check_objects(ns, peers, dual)
    finally:
        kernel.close()
        drop(bed, ns)
    return result


def check_objects(ns: str, peers: int, dual: bool = False) -> None:
    """Independent of the agent: ``ip``/``bridge`` see one route and neighbour per peer and
    family, one FDB entry per peer."""
    commands = [
        ("ip", "-n", ns, "-j", "-4", "route", "show", "proto", "211"),
        ("ip", "-n", ns, "-j", "neigh", "show", "dev", "vtep1024", "nud", "permanent"),
        ("bridge", "-n", ns, "-j", "fdb", "show", "dev", "vtep1024"),
    ]
    if dual:
        commands.append(("ip", "-n", ns, "-j", "-6", "route", "show", "proto", "211"))
    counts = [len(json.loads(sh(*args).stdout or "[]")) for args in commands]
    families = 2 if dual else 1
    assert counts == [peers, families * peers, peers] + [peers] * (families - 1), counts


def batch_run(bed: Bed, peers: int, run: int, dual: bool = False) -> float:
    ns = namespace(bed, f"batch{peers}-{run}{'-6' if dual else ''}")
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
    if dual:
        links += [
            "addr add fd01:a::1/64 dev vtep1024 nodad",
            "addr add fd01:b::1/81 dev m-dcos nodad",
            "addr add fd01:b::8000:0:1/81 dev d-dcos nodad",
        ]
    for k in range(2, peers + 2):
        vtep, mac = statedoc.vtep_ip(k), statedoc.vtep_mac(k)
        links.append(f"neigh replace {vtep} lladdr {mac} dev vtep1024 nud permanent")
        fdb.append(f"fdb replace {mac} dev vtep1024 dst {underlay_ip(k)} self permanent")
        routes.append(
            f"route replace {statedoc.block('9.0.0.0/8', 26, k - 1)} via {vtep} dev vtep1024 proto 211"
        )
        if dual:
            vtep6, block6 = statedoc.vtep_ip6(k), statedoc.block6("fd01:b::/64", 80, k - 1)
            links.append(f"neigh replace {vtep6} lladdr {mac} dev vtep1024 nud permanent")
            routes.append(f"route replace {block6} via {vtep6} dev vtep1024 proto 211")
    want = desired(document(peers, dual), AgentOptions(ip=IPv4Address(ME)), 1500)
    assert want is not None and want.masquerade is not None
    nft = render(contents(want.masquerade, want.isolation))
    files = []
    for name, lines in (("links", links), ("fdb", fdb), ("routes", routes)):
        path = bed.root / f"{name}-{peers}.batch"
        path.write_text("\n".join(lines) + "\n")
        files.append(path)
    try:
        start = time.perf_counter()
        sh("ip", "-n", ns, "-batch", str(files[0]))
        sh("bridge", "-n", ns, "-batch", str(files[1]))
        sh("ip", "-n", ns, "-batch", str(files[2]))
        sh("ip", "netns", "exec", ns, "sysctl", "-qw", "net.ipv4.ip_forward=1")
        if dual:
            sh("ip", "netns", "exec", ns, "sysctl", "-qw", "net.ipv6.conf.all.forwarding=1")
        sh("ip", "netns", "exec", ns, "nft", "-f", "-", input=nft)
        seconds = time.perf_counter() - start
        check_objects(ns, peers, dual)
    finally:
        drop(bed, ns)
    return seconds


def rows_for(
    peers: int, agents: list[AgentRun], batches: list[float], dual: bool = False
) -> list[dict[str, Any]]:
    runs = len(agents)
    cold = [a.cold for a in agents]
    idle = [t for a in agents for t in a.idle]
    ratio = median(cold) / median(batches)
    idle_writes = sum(a.idle_writes for a in agents)
    added_ops = agents[0].added_ops
    each = per_peer(dual)
    added_ok = all(a.added_ops == each and a.added_writes == each.total() for a in agents)
    suffix, stack = ("_dual", ", dual stack") if dual else ("", "")
    return [
        {
            "key": f"agent_cold_reconcile_{peers}{suffix}",
            "benchmark": f"agent cold reconcile, {peers} peers{stack} (VTEP, 2 bridges, NAT, "
            f"{each.total()} objects/peer), {runs} run(s)",
            "result": f"median {median(cold):.2f} s, worst {max(cold):.2f} s, "
            f"{agents[0].cold_writes} writes",
            "baseline": f"ip/bridge -batch + nft -f: median {median(batches):.2f} s, "
            f"worst {max(batches):.2f} s",
            "ratio": f"{ratio:.1f}x",
            "target": "within 2x",
            "met": ratio <= 2.0,
        },
        {
            "key": f"agent_idle_reconcile_{peers}{suffix}",
            "benchmark": f"agent no-change pass, {peers} peers{stack} (observe, plan, NAT check), "
            f"{len(idle)} passes",
            "result": f"median {median(idle):.3f} s, worst {max(idle):.3f} s, {idle_writes} writes",
            "target": "0 writes, well under 1 s",
            "met": idle_writes == 0 and median(idle) < 1.0,
        },
        {
            "key": f"agent_peer_added_{peers}{suffix}",
            "benchmark": f"agent pass after one peer is added (back to {peers} peers{stack}), "
            f"{runs} run(s)",
            "result": f"median {median([a.added for a in agents]):.3f} s, "
            f"{agents[0].added_writes} writes: "
            + ", ".join(f"{n} {op}" for op, n in sorted(added_ops.items())),
            "target": ", ".join(f"{n} {op}" for op, n in sorted(each.items())) + " (writes)",
            "met": added_ok,
            "notes": f"removing it: median {median([a.removed for a in agents]):.3f} s, "
            f"{agents[0].removed_writes} writes",
        },
    ]


def run(quick: bool = False) -> list[dict[str, Any]]:
    rows = []
    runs = 1 if quick else 3
    sizes = [(1000, False), (1000, True)] if quick else [(1000, False), (4093, False), (4093, True)]
    with tempfile.TemporaryDirectory(prefix="agent-bench-") as tmp:
        bed = Bed(root=Path(tmp))
        try:
            for peers, dual in sizes:
                agents, batches = [], []
                for k in range(runs):
                    agents.append(agent_run(bed, peers, k, dual))
                    batches.append(batch_run(bed, peers, k, dual))
                rows += rows_for(peers, agents, batches, dual)
        finally:
            bed.destroy()
    return rows


if __name__ == "__main__":
    for row in run(quick="--quick" in sys.argv):
        print(row)
