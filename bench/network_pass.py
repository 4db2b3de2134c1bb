"""One real agent's pass for a network added to the cluster (issue 11), for ``bench.live``.

``python -m bench.network_pass SPEC_JSON`` (root; run in a fresh interpreter: importing pysyncobj,
as the master's benchmarks do, patches pickle's loader, which breaks pyroute2's namespace helper)
prints one JSON document. SPEC: ``state`` (a file holding ``/overlay-master/state`` of the live
cluster before the network was added), ``delta`` (the watch answer that added it, as an agent
receives it), ``ip`` (a registered agent of that cluster) and ``runs``.

Per run, in a fresh namespace: the agent programs the state before the change (not timed); then
the timed part is what a real agent does with the watch answer: parse it, apply it to its copy
of the cluster state, and reconcile (new bridges, a route per peer for the new network, the
firewall sets, the CNI configuration list). Checked independently with ``ip``: one more route
per peer. The namespace is deleted after each run (its VXLAN device first, see
``agent_reconcile.drop``).
"""

from __future__ import annotations

import gc
import json
import sys
import tempfile
import time
from ipaddress import IPv4Address
from pathlib import Path
from typing import Any

from bench.agent_reconcile import drop
from overlay_agent.cluster import ClusterState
from overlay_agent.desired import AgentOptions
from overlay_agent.firewall import Firewall
from overlay_agent.netlink import Kernel
from overlay_agent.reconciler import Reconciler, Settings
from tests.netns.topology import Bed, sh


def routes(ns: str) -> int:
    out = sh("ip", "-n", ns, "-j", "-4", "route", "show", "proto", "211").stdout
    return len(json.loads(out or "[]"))


def one_run(bed: Bed, k: int, before: bytes, delta: bytes, ip: str) -> dict[str, Any]:
    ns = bed.netns(f"net{k}")
    sh("ip", "-n", ns, "link", "add", "eth0", "type", "veth", "peer", "name", "eth1")
    sh("ip", "-n", ns, "addr", "add", f"{ip}/8", "dev", "eth0")
    sh("ip", "-n", ns, "link", "set", "eth0", "up")
    options = AgentOptions(ip=IPv4Address(ip))
    settings = Settings(options, ns, bed.root / f"cni-{k}", bed.root / f"cni-data-{k}")
    kernel = Kernel(ns, IPv4Address(ip))
    try:
        reconciler = Reconciler(settings, kernel, Firewall(ns))
        state = ClusterState.from_document(json.loads(before), 1)
        first = reconciler.reconcile(state)
        assert first.converged, first
        routes_before = routes(ns)
        gc.collect()
        started = time.perf_counter()
        after = state.apply(json.loads(delta))
        outcome = reconciler.reconcile(after)
        seconds = time.perf_counter() - started
        assert outcome.converged, outcome
        peers = len(after.agents) - 1
        added = routes(ns) - routes_before
        assert added == peers, f"{added} routes added for {peers} peers"
        return {"seconds": seconds, "writes": outcome.writes, "routes": added}
    finally:
        kernel.close()
        drop(bed, ns)


def main() -> None:
    spec = json.loads(sys.argv[1])
    before, delta = Path(spec["state"]).read_bytes(), Path(spec["delta"]).read_bytes()
    runs = []
    with tempfile.TemporaryDirectory(prefix="network-pass-") as tmp:
        bed = Bed(root=Path(tmp))
        try:
            for k in range(spec["runs"]):
                runs.append(one_run(bed, k, before, delta, spec["ip"]))
        finally:
            bed.destroy()
    json.dump({"runs": runs}, sys.stdout)


if __name__ == "__main__":
    main()
