"""Agent benchmark (issue 4, done-when b): container-to-container TCP throughput over the overlay
(two agent namespaces, real CNI containers, VXLAN across an underlay bridge) as a ratio of the
same iperf3 run between the two agents' underlay veths, measured in the same run.

Run alone: ``.venv/bin/python -m bench.agent_throughput [--quick]`` (root; namespaces removed).
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

from tests.netns.harness import cluster, local_agent
from tests.netns.topology import Bed, add_container, sh, wait_for


def iperf(bed: Bed, server_ns: str, client_ns: str, address: str, seconds: int) -> float:
    """Gbit/s received, one TCP stream; the one-shot server is started and ended by PID."""
    server = bed.start(
        "ip", "netns", "exec", server_ns, "iperf3", "-s", "-1", log=bed.root / "iperf-s.log"
    )
    result: dict[str, float] = {}

    def attempt() -> bool:
        done = sh(
            "ip",
            "netns",
            "exec",
            client_ns,
            "iperf3",
            "-c",
            address,
            "-t",
            str(seconds),
            "-J",
            check=False,
        )
        received = json.loads(done.stdout or "{}").get("end", {}).get("sum_received")
        if done.returncode == 0 and received:  # before the server listens: an error document
            result["bps"] = received["bits_per_second"]
        return "bps" in result

    try:
        wait_for(f"iperf3 to {address}", attempt, timeout=30 + seconds, every=0.1)
    finally:
        bed.stop(server)
    return result["bps"] / 1e9


def run(quick: bool = False) -> list[dict[str, str]]:
    seconds = 2 if quick else 5
    with tempfile.TemporaryDirectory(prefix="agent-iperf-") as tmp:
        bed = Bed(root=Path(tmp))
        agents = []
        try:
            bed.build(agents=2)
            agents = [local_agent(bed, k) for k in (1, 2)]
            for a in agents:
                assert a.reconcile(cluster(bed, (1, 2))).converged
            c1 = add_container(bed, agents[0].ns, agents[0].conf(), "c1")
            c2 = add_container(bed, agents[1].ns, agents[1].conf(), "c2")
            assert c1.ip and c2.ip, (c1.error, c2.error)
            overlay = iperf(bed, c2.ns, c1.ns, c2.ip, seconds)
            underlay = iperf(bed, agents[1].ns, agents[0].ns, bed.agent_ip(2), seconds)
        finally:
            for a in agents:
                a.close()
            bed.destroy()
    return [
        {
            "key": "agent_overlay_throughput",
            "benchmark": f"container-to-container TCP over VXLAN, iperf3 1 stream {seconds} s",
            "result": f"{overlay:.1f} Gbit/s",
            "baseline": f"underlay veth {underlay:.1f} Gbit/s",
            "ratio": f"{overlay / underlay:.2f}x",
            "notes": "overlay MTU 1450 (underlay 1500 - 50)",
        }
    ]


if __name__ == "__main__":
    for row in run(quick="--quick" in sys.argv):
        print(row)
