"""Convergence at scale: N long-poll watchers, one more agent, time until every watcher has it.

Watchers are ``bench.loadgen watch`` clients (one ``asyncio.Protocol`` connection each, spread
round-robin over the three replicas of the main cluster, which holds 4,093 agents). Each round
deletes one agent (all watchers move on and park again), then registers a new one; the latency of
a watcher is from just before the registration is sent until that watcher has read the answer
carrying the new revision. The client is shown not to be the bottleneck by its own CPU time
during the round (and each replica's), measured from ``os.times`` and ``/proc/PID/stat``.
Memory and descriptors per watcher come from the replicas' ``/proc/PID/status`` and
``/proc/PID/fd`` before the watchers connect and once they are all parked.
"""

from __future__ import annotations

from typing import Any

from bench import loadgen, stats
from bench.clusters import agent_ip
from bench.context import Context
from bench.report import Row

TARGETS = {0: 0.5, 1: 1.0}  # p99 target (s) for the smaller and the larger watcher count


def run(ctx: Context) -> list[Row]:
    main = ctx.main
    assert main is not None and ctx.main_agents > 0, "run the throughput benchmark first"
    rows = []
    next_new = 1
    victim = 1
    for which, watchers in enumerate(ctx.sizes.watchers):
        rounds = []
        for _ in range(ctx.sizes.convergence_rounds):
            rounds.append({"delete": agent_ip(victim), "register": agent_ip(next_new, 12)})
            victim += 1
            next_new += 1
        spec = {
            "targets": [r.http for r in main.replicas],
            "pids": main.pids(),
            "token": main.token,
            "register_target": main.leader().http,
            "watchers": watchers,
            "rounds": rounds,
        }
        result = loadgen.launch("watch", spec, timeout=600)
        if result["error_count"]:
            raise AssertionError(f"{result['error_count']} watchers failed: {result['errors']}")
        rows += rows_for(which, watchers, result)
    return rows


def rows_for(which: int, watchers: int, result: dict[str, Any]) -> list[Row]:
    key = ("small", "large")[which]
    rounds = result["rounds"]
    p50s = [stats.percentile(r["latencies"], 50) for r in rounds]
    p99s = [stats.percentile(r["latencies"], 99) for r in rounds]
    maxes = [r["latencies"][-1] for r in rounds]
    acks = [r["ack"] for r in rounds]
    target = TARGETS[which]
    per_replica = result["per_replica"]
    rss = [
        (a["rss"] - b["rss"]) / n
        for a, b, n in zip(result["after"], result["before"], per_replica, strict=True)
    ]
    fds = [
        (a["fds"] - b["fds"]) / n
        for a, b, n in zip(result["after"], result["before"], per_replica, strict=True)
    ]
    client = ", ".join(f"{r['client_cpu']:.2f} s in {r['window']:.2f} s" for r in rounds)
    replicas = "; ".join(
        "/".join(f"{c:.2f}" for c in r["replicas_cpu"]) + f" s in {r['window']:.2f} s"
        for r in rounds
    )
    return [
        Row(
            f"convergence.{key}",
            f"convergence: {watchers:,} watchers, one new agent ({len(rounds)} rounds)",
            f"p50 {stats.seconds(stats.median(p50s))}, p99 {stats.seconds(stats.median(p99s))} "
            f"(worst round {stats.seconds(max(p99s))}), max {stats.seconds(max(maxes))}",
            f"registration ack {stats.seconds(stats.median(acks))}",
            f"p99/ack {stats.median(p99s) / stats.median(acks):.0f}x",
            f"p99 < {target:g} s",
            stats.median(p99s) < target,
            notes=f"Watchers per replica {'/'.join(map(str, per_replica))}. Figures are medians "
            "over rounds; latency counts from just before the registration is sent. CPU time "
            f"during each round, load generator: {client}; replicas 1/2/3: "
            f"{replicas}.",
        ),
        Row(
            f"watcher_cost.{key}",
            f"per parked watcher on the master ({watchers:,} watchers)",
            f"{stats.size(stats.median(rss))} resident, {stats.median(fds):.2f} fds "
            f"(per replica: {', '.join(stats.size(x) for x in rss)})",
            notes="(VmRSS after - before) / watchers on that replica, from /proc/PID/status and "
            "/proc/PID/fd, with every watcher's long poll parked.",
        ),
    ]
