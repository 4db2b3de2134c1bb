"""Convergence at scale: N long-poll watchers, one more agent, time until every watcher has it.

Watchers are ``bench.loadgen watch`` clients (one ``asyncio.Protocol`` connection each, spread
round-robin over the three replicas of the main cluster, which holds 4,093 agents). Each round
deletes one agent (all watchers move on and park again), then registers a new one; the latency of
a watcher is from just before the registration is sent until that watcher has read the answer
carrying the new revision.

Baseline, in the same run with the same watchers: three ``bench.floor`` processes, the same web
stack (FastAPI on uvicorn) serving the same long-poll contract from one shared ``asyncio.Event``
and answering a real one-agent delta of the master's; a round bumps all three at once. That is
what fanning the answer out costs with no Raft, no snapshot and no per-request work of ours.

The client is shown not to be the bottleneck by its own CPU time during the round (and each
replica's), measured from ``os.times`` and ``/proc/PID/stat``. Memory and descriptors per watcher
come from ``/proc/PID/status`` and ``/proc/PID/fd`` before the watchers connect and once they are
all parked.
"""

from __future__ import annotations

from typing import Any

import httpx

from bench import floor, loadgen, processes, stats
from bench.clusters import agent_ip
from bench.context import Context
from bench.report import Row

TARGETS = {0: 0.5, 1: 1.0}  # p99 target (s) for the smaller and the larger watcher count


def run(ctx: Context) -> list[Row]:
    main = ctx.main
    assert main is not None and ctx.main_agents > 0, "run the throughput benchmark first"
    leader = main.leader()
    revision = int(
        httpx.get(f"{leader.url}/overlay-master/watch?since=0&timeout=0", timeout=30).headers[
            "x-overlay-revision"
        ]
    )
    delta = ctx.workdir / "delta.json"
    delta.write_bytes(
        httpx.get(
            f"{leader.url}/overlay-master/watch?since={revision - 1}&timeout=0", timeout=30
        ).content
    )
    floors = [floor.launch(delta) for _ in range(3)]
    rows = []
    plans = iter(
        {"delete": agent_ip(n), "register": agent_ip(n, 12)}
        for n in range(1, 1 + len(ctx.sizes.watchers) * ctx.sizes.convergence_rounds)
    )
    try:
        for which, watchers in enumerate(ctx.sizes.watchers):
            rounds = [next(plans) for _ in range(ctx.sizes.convergence_rounds)]
            common = {"watchers": watchers, "rounds": rounds}
            base = launch(
                {
                    **common,
                    "floor": True,
                    "targets": [address for address, _ in floors],
                    "pids": [proc.pid for _, proc in floors],
                    "register_target": floors[0][0],
                }
            )
            term = main.raft_term()
            ours = launch(
                {
                    **common,
                    "targets": [r.http for r in main.replicas],
                    "pids": main.pids(),
                    "token": main.token,
                    "register_target": main.leader().http,
                }
            )
            ours["terms"] = (term, main.raft_term())
            rows += rows_for(which, watchers, ours, base)
    finally:
        for _, proc in floors:
            processes.stop(proc)
    return rows


def launch(spec: dict[str, Any]) -> dict[str, Any]:
    result = loadgen.launch("watch", spec, timeout=600)
    if result["error_count"]:
        raise AssertionError(f"{result['error_count']} watchers failed: {result['errors']}")
    return result


def latency(result: dict[str, Any]) -> dict[str, float]:
    rounds = result["rounds"]
    p99s = [stats.percentile(r["latencies"], 99) for r in rounds]
    return {
        "p50": stats.median([stats.percentile(r["latencies"], 50) for r in rounds]),
        "p99": stats.median(p99s),
        "worst_p99": max(p99s),
        "max": max(r["latencies"][-1] for r in rounds),
        "ack": stats.median([r["ack"] for r in rounds]),
    }


def per_watcher(result: dict[str, Any], field: str) -> list[float]:
    return [
        (a[field] - b[field]) / n
        for a, b, n in zip(result["after"], result["before"], result["per_replica"], strict=True)
    ]


def cpu_text(result: dict[str, Any]) -> str:
    return "; ".join(
        f"client {r['client_cpu']:.2f} s, servers "
        + "/".join(f"{c:.2f}" for c in r["replicas_cpu"])
        + f" s in {r['window']:.2f} s"
        for r in result["rounds"]
    )


def rows_for(which: int, watchers: int, ours: dict[str, Any], base: dict[str, Any]) -> list[Row]:
    key = ("small", "large")[which]
    mine, floor_ = latency(ours), latency(base)
    target = TARGETS[which]
    rss, fds = per_watcher(ours, "rss"), per_watcher(ours, "fds")
    base_rss = per_watcher(base, "rss")
    return [
        Row(
            f"convergence.{key}",
            f"convergence: {watchers:,} watchers, one new agent ({len(ours['rounds'])} rounds)",
            f"p50 {stats.seconds(mine['p50'])}, p99 {stats.seconds(mine['p99'])} "
            f"(worst round {stats.seconds(mine['worst_p99'])}), max {stats.seconds(mine['max'])}",
            f"bare FastAPI long poll: p50 {stats.seconds(floor_['p50'])}, "
            f"p99 {stats.seconds(floor_['p99'])}",
            f"{mine['p99'] / floor_['p99']:.2f}x p99",
            f"p99 < {target:g} s",
            mine["p99"] < target,
            notes=f"Watchers per replica {'/'.join(map(str, ours['per_replica']))}. Medians over "
            "rounds; latency counts from just before the registration is sent (its "
            f"acknowledgement took {stats.seconds(mine['ack'])}). Raft term {ours['terms'][0]} "
            f"before, {ours['terms'][1]} after; requests retried on 503: {ours['retries']}. "
            "CPU time during each round, "
            f"master: {cpu_text(ours)}. Floor: {cpu_text(base)}.",
        ),
        Row(
            f"watcher_cost.{key}",
            f"per parked watcher on the master ({watchers:,} watchers)",
            f"{stats.size(stats.median(rss))} resident, {stats.median(fds):.2f} fds",
            f"bare FastAPI long poll: {stats.size(stats.median(base_rss))}",
            f"{stats.median(rss) / stats.median(base_rss):.2f}x",
            notes="(VmRSS after - before) / watchers on that process, from /proc/PID/status and "
            "/proc/PID/fd with every long poll parked; per replica "
            + ", ".join(stats.size(x) for x in rss)
            + ".",
        ),
    ]
