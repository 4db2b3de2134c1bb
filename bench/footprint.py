"""Footprint and restart at full size: resident memory per replica, journal and dump sizes, and
the time for a ``kill -9``'d full cluster to be ready again with the same state.

PySyncObj writes ``raft.dump`` only at log compaction: with our settings (``logCompactionSplit``)
each replica compacts in its own 30 s window of every 300 s once its log passed 5,000 entries or
300 s, so a run of a few minutes may not have one yet. The size of the snapshot this state would
give is therefore also computed here, exactly as PySyncObj's serializer writes it (gzip of the
pickled consumer state), from an in-process allocator holding the same number of agents.

Restart: SIGKILL all three replicas, start all three, and time until each answers ``/readyz``
200 and holds at least the revision the cluster had before the kill.
"""

from __future__ import annotations

import gzip
import pickle
import struct
import time
from pathlib import Path

import httpx

from bench import processes, stats
from bench.clusters import TWO_OVERLAYS, OverlayCluster, agent_ip, settle
from bench.context import Context
from bench.report import Row
from overlay_master import allocator
from overlay_master.config import parse_text
from overlay_master.network import to_plain

JOURNAL_END_OFFSET = 36  # pysyncobj journal header: name 24 B, version 8 B, format 4 B, end 4 B


def journal_used(path: Path) -> int:
    with path.open("rb") as f:
        f.seek(JOURNAL_END_OFFSET)
        end: int = struct.unpack("<I", f.read(4))[0]
        return end


def computed_dump(agents: int) -> int:
    state = allocator.ClusterState()
    state.apply(allocator.configure(to_plain(parse_text(TWO_OVERLAYS))))
    for n in range(1, agents + 1):
        state.apply(allocator.register(agent_ip(n)))
    return len(gzip.compress(pickle.dumps([{}, {"state": state}])))


def revision(cluster: OverlayCluster) -> int:
    leader = cluster.leader()
    answer = httpx.get(f"{leader.url}/overlay-master/watch?since=0&timeout=0", timeout=30)
    return int(answer.headers["x-overlay-revision"])


def restored(cluster: OverlayCluster, target: int) -> bool:
    for r in cluster.replicas:
        if not cluster._ready(r):
            return False
        answer = httpx.get(f"{r.url}/overlay-master/watch?since={target}&timeout=0", timeout=2)
        if answer.status_code != 200:
            return False
    return True


def restart(cluster: OverlayCluster) -> float:
    target = revision(cluster)
    for r in cluster.replicas:
        assert r.proc is not None
        processes.stop(r.proc)
    started = time.monotonic()
    for r in cluster.replicas:
        cluster.start(r)
    settle(lambda: restored(cluster, target), 120, f"cluster ready at revision {target}")
    return time.monotonic() - started


def run(ctx: Context) -> list[Row]:
    main = ctx.main
    assert main is not None and ctx.main_agents > 0, "run the state benchmark first"
    warm = [processes.sample(pid) for pid in main.pids()]
    disk = []
    for r in main.replicas:
        journal = r.data_dir / "raft.journal"
        dump = r.data_dir / "raft.dump"
        disk.append(
            (
                journal.stat().st_size,
                journal_used(journal),
                dump.stat().st_size if dump.exists() else None,
            )
        )
    dump_size = computed_dump(ctx.main_agents)
    times = [restart(main) for _ in range(ctx.sizes.restarts)]
    cold = [processes.sample(pid) for pid in main.pids()]
    n = ctx.main_agents
    dumps = [d for _, _, d in disk if d is not None]
    return [
        Row(
            "footprint.rss",
            f"resident memory per replica, {n:,} agents",
            f"{stats.size(max(s.rss for s in warm))} max after the benchmarks "
            f"(peak {stats.size(max(s.hwm for s in warm))}); "
            f"{stats.size(max(s.rss for s in cold))} max right after a restart",
            notes="VmRSS of each replica: after the benchmarks "
            + ", ".join(stats.size(s.rss) for s in warm)
            + "; after the last restart "
            + ", ".join(stats.size(s.rss) for s in cold)
            + ".",
        ),
        Row(
            "footprint.disk",
            f"journal and dump per replica, {n:,} agents",
            f"journal {stats.size(max(u for _, u, _ in disk))} used "
            f"({stats.size(max(s for s, _, _ in disk))} file); dump "
            + (stats.size(max(dumps)) if dumps else "not written yet")
            + f", {stats.size(dump_size)} computed",
            notes="Journal bytes used (header's end offset) and file size (the durable journal "
            "writes exactly what it holds; PySyncObj's own grows its mmap'ed file by doubling), "
            "per replica: "
            + ", ".join(f"{stats.size(u)}/{stats.size(s)}" for s, u, _ in disk)
            + f". Dumps on disk: {len(dumps)} of 3 (written at log compaction only). Computed: "
            "gzip(pickle) of the allocator state with the same agent count, as PySyncObj's "
            "serializer writes it.",
        ),
        Row(
            "restart",
            f"full-cluster restart after kill -9, {n:,} agents ({len(times)} runs)",
            f"median {stats.seconds(stats.median(times))}, max {stats.seconds(max(times))}",
            notes="From starting three killed replicas to all three answering /readyz 200 at "
            "(at least) the revision held before the kill; includes Python start-up and the "
            "replay of the local journal.",
        ),
    ]
