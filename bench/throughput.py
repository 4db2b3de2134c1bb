"""Registration throughput: agents/s through the HTTP API of 3 replicas, 32 concurrent clients.

The baseline is raw PySyncObj synchronous writes (counter increments, the master's exact
``SyncObjConf``, PySyncObj's own journal, which never syncs) with the same 32 clients spread the
same way over its three replicas, driven by the same load generator process over a line
protocol. A third cluster runs the master with ``--unsafe-no-fsync`` (journal written but never
synced) to show what the sync before every acknowledgement costs. Segments rotate between the
clusters (raw, master, master without fsync, raw, ...) so all see the same noise; each segment is
one rate.

This benchmark also fills the main cluster to one agent short of full size (4,093 of the /20's
4,094 VTEPs): the later benchmarks reuse it.
"""

from __future__ import annotations

from bench import loadgen, processes, stats
from bench.clusters import TWO_OVERLAYS, OverlayCluster, RawCluster
from bench.context import Context
from bench.report import Row

CLIENTS = 32


def segments(total: int, parts: int) -> list[int]:
    return [total // parts + (1 if i < total % parts else 0) for i in range(parts)]


def run(ctx: Context) -> list[Row]:
    main = OverlayCluster(ctx.workdir / "main", config_text=TWO_OVERLAYS)
    ctx.main = main
    main.start_all()
    raw = RawCluster(ctx.workdir / "throughput-raw")
    unsynced = OverlayCluster(
        ctx.workdir / "throughput-nosync",
        config_text=TWO_OVERLAYS,
        extra_args=["--unsafe-no-fsync"],
    )
    ours: list[dict[str, float]] = []
    base: list[dict[str, float]] = []
    nosync: list[dict[str, float]] = []
    try:
        raw.start_all()
        unsynced.start_all()
        first = 0
        for count in segments(ctx.sizes.agents - 1, ctx.sizes.throughput_segments):
            spec = {"clients": CLIENTS, "count": count}
            raw_spec = {**spec, "kind": "raw", "targets": [r.control for r in raw.replicas]}
            base.append(segment(raw_spec, [r.proc.pid for r in raw.replicas if r.proc]))
            http_spec = {
                **spec,
                "kind": "http",
                "targets": [r.http for r in main.replicas],
                "token": main.token,
                "first_agent": first,
            }
            ours.append(segment(http_spec, main.pids()))
            nosync_spec = {
                **http_spec,
                "targets": [r.http for r in unsynced.replicas],
                "token": unsynced.token,
            }
            nosync.append(segment(nosync_spec, unsynced.pids()))
            first += count
    finally:
        raw.stop_all()
        unsynced.stop_all()
    ctx.main_agents = first
    errors = sum(int(s["errors"]) for s in ours + nosync)
    if errors:
        raise AssertionError(f"{errors} registrations failed: {ours[0].get('first_errors')}")
    raw_rate = stats.median([s["rate"] for s in base])
    ratio = stats.median([s["rate"] for s in ours]) / raw_rate
    nosync_ratio = stats.median([s["rate"] for s in nosync]) / raw_rate
    cpu_ours = stats.median([s["server_cpu_per_write"] for s in ours])
    cpu_base = stats.median([s["server_cpu_per_write"] for s in base])
    return [
        Row(
            "throughput",
            f"registration throughput: {CLIENTS} clients over 3 replicas, "
            f"{first:,} agents in {len(ours)} segments",
            summary(ours),
            "raw PySyncObj sync writes: " + summary(base),
            f"{ratio:.2f}x",
            "at least 0.5x raw",
            ratio >= 0.5,
            notes=f"Median and worst of {len(ours)} segments, rotating raw/master/master "
            "without fsync. The master syncs its journal before every acknowledgement (group "
            "commit: one fdatasync per Raft step). CPU time "
            f"of the three servers per write (all replicas together, from /proc/PID/stat): master "
            f"{stats.seconds(cpu_ours)}, raw {stats.seconds(cpu_base)} "
            f"({cpu_ours / cpu_base:.1f}x); on a CPU-bound machine the rate ratio follows "
            "the inverse of this. Load "
            "generator in its own process; its CPU time per segment: master "
            + ", ".join(f"{s['client_cpu']:.2f} s of {s['elapsed']:.2f} s" for s in ours)
            + "; raw "
            + ", ".join(f"{s['client_cpu']:.2f} s of {s['elapsed']:.2f} s" for s in base)
            + ". Per-request latency p50/p99, master: "
            + ", ".join(f"{stats.seconds(s['p50'])}/{stats.seconds(s['p99'])}" for s in ours)
            + ".",
        ),
        Row(
            "throughput.nosync",
            f"registration throughput with --unsafe-no-fsync: {CLIENTS} clients over 3 replicas",
            summary(nosync),
            "raw PySyncObj sync writes: " + summary(base),
            f"{nosync_ratio:.2f}x",
            notes="The same segments against a third cluster that writes its journal but never "
            "syncs (benchmarks only: a power cut of two masters can lose acknowledged "
            "allocations). Per-request latency p50/p99: "
            + ", ".join(f"{stats.seconds(s['p50'])}/{stats.seconds(s['p99'])}" for s in nosync)
            + ".",
        ),
    ]


def segment(spec: dict[str, object], pids: list[int]) -> dict[str, float]:
    """One load-generator run, plus the CPU seconds the three servers spent per write."""
    before = sum(processes.cpu_seconds(pid) for pid in pids)
    result = loadgen.launch("throughput", spec, 300)
    result["server_cpu_per_write"] = (
        sum(processes.cpu_seconds(pid) for pid in pids) - before
    ) / result["count"]
    return result


def summary(runs: list[dict[str, float]]) -> str:
    rates = [s["rate"] for s in runs]
    return f"median {stats.median(rates):,.0f}/s, worst {min(rates):,.0f}/s"
