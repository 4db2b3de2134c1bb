"""The load generator: a process of its own, so its CPU time is measured apart from the runner's.

``python -m bench.loadgen throughput SPEC_JSON`` and ``python -m bench.loadgen watch SPEC_JSON``
print one JSON document on stdout. Both use ``bench.wire`` (an ``asyncio.Protocol`` that parses
only what it needs), and report their own CPU time so the report can show the client was not the
bottleneck.

throughput: ``clients`` connections spread round-robin over ``targets``; each makes synchronous
    writes back to back (waits for the answer before the next) until ``count`` writes are done.
    ``kind`` "http": ``POST /overlay-master/agents`` of new agents; "report": container reports
    (``PUT /overlay-master/agents/{ip}/containers``, each a new list); "raw": ``inc`` lines.
watch (``watchers.watch``): for each of ``systems`` (the master's replicas, or the floors), ``watchers`` long-poll
    clients spread round-robin over its ``targets`` (and ``pages`` more with
    ``include=containers``), each looping on ``GET /overlay-master/watch?since=REV&timeout=S``
    and remembering when it first held each revision. Per round and system: a settling change
    (the watchers all move on and park again), then the measured one (an agent registered, a
    network added, a container report), timed until every watcher of the measured group holds
    its revision; rounds alternate between the systems. Also samples the replicas' ``/proc``
    before and after the watchers connect (memory and descriptors per watcher).
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from typing import Any

from bench import processes, stats, watchers, wire
from bench.clusters import agent_ip


def cpu() -> float:
    t = os.times()
    return t.user + t.system


# -- throughput -----------------------------------------------------------------------------------


def request(spec: dict[str, Any], n: int) -> tuple[str, str, bytes]:
    """The n-th write of a segment: a new agent ("http"), or a new container report ("report")
    of one of ``spec["reports"]``' agents (each [ip, an address of its Mesos half])."""
    if spec["kind"] == "report":
        ip, address = spec["reports"][n % len(spec["reports"])]
        container = {"id": f"bench-{n}", "network": "dcos", "half": "mesos", "address": address}
        body = json.dumps({"containers": [container]}).encode()
        return "PUT", f"/overlay-master/agents/{ip}/containers", body
    body = json.dumps({"ip": agent_ip(spec["first_agent"] + n)}).encode()
    return "POST", "/overlay-master/agents", body


async def throughput(spec: dict[str, Any]) -> dict[str, Any]:
    targets: list[str] = spec["targets"]
    count: int = spec["count"]
    kind: str = spec["kind"]
    headers = {"Authorization": f"Bearer {spec['token']}"} if spec.get("token") else {}
    issued = 0
    errors: list[str] = []
    latencies: list[float] = []

    async def client(target: str) -> None:
        nonlocal issued
        if kind == "raw":
            line = await wire.connect_line(target)
        else:
            conn = await wire.connect(target)
        while issued < count:
            issued += 1
            started = time.monotonic()
            if kind == "raw":
                answer = await line.call("inc")
                ok = answer.startswith("ok")
            else:
                method, path, body = request(spec, issued)
                reply = await conn.request(method, path, body, headers)
                ok, answer = reply.status == 200, reply.body.decode(errors="replace")
            latencies.append(time.monotonic() - started)
            if not ok:
                errors.append(answer[:200])

    cpu0, t0 = cpu(), time.monotonic()
    await asyncio.gather(*(client(targets[i % len(targets)]) for i in range(spec["clients"])))
    elapsed = time.monotonic() - t0
    return {
        "count": len(latencies),
        "errors": len(errors),
        "first_errors": errors[:3],
        "elapsed": elapsed,
        "rate": len(latencies) / elapsed,
        "p50": stats.percentile(latencies, 50),
        "p99": stats.percentile(latencies, 99),
        "client_cpu": cpu() - cpu0,
    }


def main() -> None:
    processes.raise_open_files()
    mode, spec = sys.argv[1], json.loads(sys.argv[2])
    runner = {"throughput": throughput, "watch": watchers.watch}[mode]
    result = asyncio.run(runner(spec))
    json.dump(result, sys.stdout)


def launch(mode: str, spec: dict[str, Any], timeout: float) -> dict[str, Any]:
    """Run the load generator in its own process (from the runner) and return its JSON answer."""
    proc = processes.spawn(
        [sys.executable, "-m", "bench.loadgen", mode, json.dumps(spec)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        out, err = proc.communicate(timeout=timeout)
    finally:
        processes.stop(proc)
    if proc.returncode != 0:
        raise RuntimeError(f"loadgen {mode} failed ({proc.returncode}): {err.decode()[-2000:]}")
    result: dict[str, Any] = json.loads(out)
    return result


if __name__ == "__main__":
    main()
