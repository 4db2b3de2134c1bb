"""16,382 agents: a ``/18`` VTEP subnet filled by a thundering herd of agent-like clients.

The cluster: three real replicas (``--unsafe-no-fsync`` off: every acknowledgement is synced)
with ``vtep_subnet: 44.128.0.0/18`` (16,384 addresses, 16,382 VTEPs without the network and
broadcast addresses) and DC/OS's default ``dcos`` network (``9.0.0.0/8`` in ``/26`` blocks:
262,144 blocks). The agents: ``bench.herd`` processes (several, because one process may hold
at most 20,000 descriptors here), each simulating a share of the agents as the real agent
behaves: register with failover and capped, jittered backoff, then long-poll the watch from
``since=0`` (a full state first), forever.

Like the agent, the herd asks for gzip (docs/api.md, "Compression"): the full state each agent
reads first comes compressed; the herd counts the bytes and never unpacks them.

Measured, in this order, on one cluster per storm:

0. Storms at half size (a ``/19``, 8,190 agents), three, each on a fresh cluster: a storm at
   full size takes minutes on the 2-core machine, so the full-size storm runs once and the
   repeats come from here.
1. Registration storm: every agent of every herd is released at the same moment (no ramp, no
   pacing: a restarting data centre), until every agent holds its 200; also until every agent
   holds the last revision (its own full state read). Repeated ``storms`` times, each on a
   fresh cluster; the last cluster is used for the rest.
2. Convergence: every agent parked on its long poll; one more agent registers (the /18 is then
   full; the round before deleted one so that a VTEP is free); latency per watcher from just
   before the registration is sent until that watcher read the answer with the new revision.
3. ``GET /overlay-master/state`` and ``GET /overlay-master/networks`` on the leader, with every
   watcher parked: cold (the first read after a write, which also wakes every watcher) and warm
   (the same read again), bytes.
4. Resident memory of each replica with every watcher parked.
5. Full restart: the herds are stopped, all three replicas are killed with SIGKILL and started;
   time until all three answer ``/readyz`` 200 at the revision held before.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import httpx

from bench import footprint, processes, stats
from bench.clusters import OverlayCluster, agent_ip
from bench.context import Context
from bench.report import Row

SCALE_CONFIG = """\
vtep_subnet: {vtep}
vtep_mac_oui: 70:B3:D5:00:00:00
overlays:
  - name: dcos
    subnet: 9.0.0.0/8
    prefix: 26
"""
STORM_TARGET = 30.0
CONVERGENCE_TARGET = 1.5
RSS_TARGET = 400 * 1000 * 1000
RESTART_TARGET = 5.0


@dataclass(frozen=True)
class ScaleSizes:
    vtep: str
    agents: int  # every usable VTEP of ``vtep``
    herds: int
    storms: int
    rounds: int
    reads: int
    restarts: int


# One storm at full size: each takes 4-5 minutes on the 2-core machine and the whole run must fit
# in 15. Repeats come from the storms at half size (a /19), run first, each on a fresh cluster.
FULL_SCALE = ScaleSizes("44.128.0.0/18", 16382, 4, 1, 5, 3, 3)
HALF_SCALE = ScaleSizes("44.128.0.0/19", 8190, 4, 3, 0, 0, 0)
QUICK_SCALE = ScaleSizes("44.128.0.0/24", 254, 2, 1, 2, 2, 1)
QUICK_HALF = ScaleSizes("44.128.0.0/25", 126, 2, 1, 0, 0, 0)


def load() -> str:
    """The machine's load average (1, 5, 15 min), recorded with every figure."""
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


class HerdProcess:
    """One ``bench.herd`` child, spoken to with JSON lines."""

    def __init__(self, spec: dict[str, Any]) -> None:
        self.proc = processes.spawn(
            [sys.executable, "-m", "bench.herd", json.dumps(spec)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        self.expect("ready")

    def send(self, command: dict[str, Any]) -> None:
        stdin: IO[bytes] | None = self.proc.stdin
        assert stdin is not None
        stdin.write(json.dumps(command).encode() + b"\n")
        stdin.flush()

    def expect(self, event: str) -> dict[str, Any]:
        stdout: IO[bytes] | None = self.proc.stdout
        assert stdout is not None
        line = stdout.readline()
        if not line:
            raise RuntimeError(f"herd {self.proc.pid} exited ({self.proc.poll()})")
        answer: dict[str, Any] = json.loads(line)
        if answer["event"] != event:
            raise RuntimeError(f"herd {self.proc.pid}: expected {event}, got {answer}")
        return answer

    def stop(self) -> None:
        processes.stop(self.proc)


class Herds:
    def __init__(self, cluster: OverlayCluster, sizes: ScaleSizes) -> None:
        share = -(-sizes.agents // sizes.herds)
        self.children = [
            HerdProcess(
                {
                    "targets": [r.http for r in cluster.replicas],
                    "token": cluster.token,
                    "first": 1 + i * share,
                    "count": min(share, sizes.agents - i * share),
                }
            )
            for i in range(sizes.herds)
        ]

    def ask(self, command: dict[str, Any], event: str) -> list[dict[str, Any]]:
        for child in self.children:
            child.send(command)
        return [child.expect(event) for child in self.children]

    def stop(self) -> None:
        for child in self.children:
            child.stop()


def revision(url: str) -> int:
    answer = HTTP.get(f"{url}/overlay-master/watch?since=0&timeout=0")
    return int(answer.headers["x-overlay-revision"])


HTTP = httpx.Client(timeout=60)  # one client: building one per request costs tens of ms


def write(cluster: OverlayCluster, path: str, body: dict[str, Any]) -> tuple[int, float, float]:
    """A write on the leader, retried on 503 like an agent: (revision, sent, acknowledged)."""
    deadline = time.monotonic() + 60
    while True:
        leader = cluster.leader()
        sent = time.monotonic()
        answer = HTTP.post(f"{leader.url}{path}", json=body, headers=cluster.auth)
        acked = time.monotonic()
        if answer.status_code != 503 or time.monotonic() > deadline:
            answer.raise_for_status()
            return int(answer.headers["x-overlay-revision"]), sent, acked


def storm(ctx: Context, sizes: ScaleSizes, n: int) -> tuple[OverlayCluster, Herds, dict[str, Any]]:
    config = SCALE_CONFIG.format(vtep=sizes.vtep)
    cluster = OverlayCluster(ctx.workdir / f"scale-{n}", config_text=config)
    cluster.start_all()
    herds = Herds(cluster, sizes)
    before = load()
    cpu0 = [processes.cpu_seconds(pid) for pid in cluster.pids()]
    started = time.monotonic()
    answers = herds.ask({"cmd": "go"}, "registered")
    registered = [t for a in answers for t in a["registered"]]
    attempts = [x for a in answers for x in a["attempts"]]
    final = revision(cluster.leader().url)
    phase("  all registered", started)
    held = [t for a in herds.ask({"cmd": "wait", "revision": final}, "reached") for t in a["held"]]
    failures = herds.ask({"cmd": "stats"}, "stats")
    result = {
        "all_registered": max(registered) - started,
        "median_registered": stats.median([t - started for t in registered]),
        "all_held": max(held) - started,
        "attempts": attempts,
        "failures": sum_counts([f["failures"] for f in failures]),
        "servers_cpu": [
            processes.cpu_seconds(pid) - c for pid, c in zip(cluster.pids(), cpu0, strict=True)
        ],
        "herds_cpu": sum(a["cpu"] for a in answers),
        "load": f"{before} -> {load()}",
        "revision": final,
    }
    return cluster, herds, result


def sum_counts(counts: list[dict[str, int]]) -> dict[str, int]:
    total: dict[str, int] = {}
    for c in counts:
        for k, v in c.items():
            total[k] = total.get(k, 0) + v
    return total


def converge(
    cluster: OverlayCluster, herds: Herds, sizes: ScaleSizes
) -> tuple[list[dict[str, Any]], str]:
    rounds = []
    gone = agent_ip(1)  # deleted first: its agent keeps watching, as a deleted agent would
    for k in range(sizes.rounds):
        settled, _, _ = write(cluster, "/overlay-master/agents/delete", {"agents": [gone]})
        herds.ask({"cmd": "wait", "revision": settled}, "reached")
        time.sleep(0.3)  # the parked polls reach the replicas
        cpu0 = [processes.cpu_seconds(pid) for pid in cluster.pids()]
        before = load()
        fresh = agent_ip(1 + k, 12)
        target, started, acked = write(cluster, "/overlay-master/agents", {"ip": fresh})
        held = [
            t for a in herds.ask({"cmd": "wait", "revision": target}, "reached") for t in a["held"]
        ]
        latencies = sorted(t - started for t in held)
        rounds.append(
            {
                "p50": stats.percentile(latencies, 50),
                "p99": stats.percentile(latencies, 99),
                "max": latencies[-1],
                "ack": acked - started,
                "watchers": len(latencies),
                "servers_cpu": [
                    processes.cpu_seconds(pid) - c
                    for pid, c in zip(cluster.pids(), cpu0, strict=True)
                ],
                "load": before,
            }
        )
        gone = fresh
    return rounds, gone


def timed_get(url: str) -> tuple[float, int]:
    started = time.monotonic()
    answer = HTTP.get(url)
    elapsed = time.monotonic() - started
    answer.raise_for_status()
    return elapsed, len(answer.content)


def reads(cluster: OverlayCluster, sizes: ScaleSizes, spare: str) -> dict[str, Any]:
    """Cold (the first read after a write) and warm (the same read again), interleaved; the
    writes alternately delete and register ``spare`` (the /18 is full)."""
    out: dict[str, Any] = {"loads": []}
    writes = [
        ("/overlay-master/agents/delete", {"agents": [spare]}),
        ("/overlay-master/agents", {"ip": spare}),
    ]
    k = 0
    for name, path in (
        ("state", "/overlay-master/state"),
        ("networks", "/overlay-master/networks"),
    ):
        cold, warm = [], []
        for _ in range(sizes.reads):
            leader = cluster.leader()
            out["loads"].append(load())
            write(cluster, *writes[k % 2])
            k += 1
            elapsed, size = timed_get(leader.url + path)
            cold.append(elapsed)
            warm.append(timed_get(leader.url + path)[0])
        out[name] = {"cold": cold, "warm": warm, "bytes": size}
    return out


def restart(cluster: OverlayCluster, repeats: int) -> list[float]:
    return [footprint.restart(cluster) for _ in range(repeats)]


def phase(name: str, since: float) -> float:
    """Progress on stderr (a full-size run takes minutes); returns the time now."""
    now = time.monotonic()
    print(f"bench: scale: {name} took {now - since:.1f} s", file=sys.stderr, flush=True)
    return now


def half_storms(ctx: Context, sizes: ScaleSizes) -> list[dict[str, Any]]:
    results = []
    mark = time.monotonic()
    for n in range(sizes.storms):
        cluster, herds, result = storm(ctx, sizes, 100 + n)
        herds.stop()
        cluster.stop_all()
        results.append(result)
        mark = phase(f"storm {n + 1} at {sizes.agents:,}", mark)
    return results


def run(ctx: Context) -> list[Row]:
    sizes = QUICK_SCALE if ctx.quick else FULL_SCALE
    half = half_storms(ctx, QUICK_HALF if ctx.quick else HALF_SCALE)
    mark = time.monotonic()
    storms: list[dict[str, Any]] = []
    cluster: OverlayCluster | None = None
    herds: Herds | None = None
    try:
        for n in range(sizes.storms):
            if herds is not None:
                herds.stop()
            if cluster is not None:
                cluster.stop_all()
            cluster, herds, result = storm(ctx, sizes, n)
            storms.append(result)
            mark = phase(f"storm {n + 1}", mark)
        assert cluster is not None and herds is not None
        rounds, last = converge(cluster, herds, sizes)
        mark = phase("convergence", mark)
        read = reads(cluster, sizes, last)
        mark = phase("reads", mark)
        time.sleep(0.5)  # every watcher parked again before sampling
        rss = [processes.sample(pid) for pid in cluster.pids()]
        rss_load = load()
        herds.stop()
        herds = None
        restart_load = load()
        restarts = restart(cluster, sizes.restarts)
        phase("restarts", mark)
    finally:
        if herds is not None:
            herds.stop()
        if cluster is not None:
            cluster.stop_all()
    out = rows(sizes, storms, rounds, read, rss, rss_load, restarts, restart_load)
    return [storm_row(QUICK_HALF if ctx.quick else HALF_SCALE, half, "scale.storm.half"), *out]


def spread(values: list[float]) -> str:
    return (
        f"median {stats.seconds(stats.median(values))} "
        f"(min {stats.seconds(min(values))}, max {stats.seconds(max(values))})"
    )


def rows(
    sizes: ScaleSizes,
    storms: list[dict[str, Any]],
    rounds: list[dict[str, Any]],
    read: dict[str, Any],
    rss: list[processes.ProcSample],
    rss_load: str,
    restarts: list[float],
    restart_load: str,
) -> list[Row]:
    n = sizes.agents
    p99s = [r["p99"] for r in rounds]
    out = [
        storm_row(sizes, storms, "scale.storm"),
        Row(
            "scale.convergence",
            f"convergence: {rounds[0]['watchers']:,} watchers, one new agent "
            f"({len(rounds)} rounds)",
            f"p99 {spread(p99s)}; p50 median {stats.seconds(stats.median([r['p50'] for r in rounds]))}",
            target=f"p99 < {CONVERGENCE_TARGET:g} s",
            met=stats.median(p99s) < CONVERGENCE_TARGET,
            notes="Per round p50/p99/max, acknowledgement, load: "
            + "; ".join(
                f"{stats.seconds(r['p50'])}/{stats.seconds(r['p99'])}/{stats.seconds(r['max'])}, "
                f"ack {stats.seconds(r['ack'])}, load {r['load']}"
                for r in rounds
            )
            + ".",
        ),
    ]
    for name in ("state", "networks"):
        r = read[name]
        out.append(
            Row(
                f"scale.{name}",
                f"GET {name}, {n:,} agents ({stats.size(r['bytes'])}), leader, linearizable",
                f"cold {spread(r['cold'])}; warm {spread(r['warm'])}",
                target="none: the issue asks for the figure at this size and sets no bound",
                notes=f"{len(r['cold'])} pairs; cold is the first read after a write (which also "
                "wakes every parked watcher), warm the same read right after. Loads: "
                + ", ".join(read["loads"])
                + ".",
            )
        )
    out += [
        Row(
            "scale.rss",
            f"resident memory per replica, {n:,} agents and watchers",
            "max " + stats.size(max(s.rss for s in rss)),
            target=f"< {RSS_TARGET // 1000 // 1000} MB",
            met=max(s.rss for s in rss) < RSS_TARGET,
            notes="VmRSS per replica "
            + ", ".join(stats.size(s.rss) for s in rss)
            + f" (peak {', '.join(stats.size(s.hwm) for s in rss)}), fds "
            + ", ".join(str(s.fds) for s in rss)
            + f"; load {rss_load}.",
        ),
        Row(
            "scale.restart",
            f"full restart after kill -9, {n:,} agents ({len(restarts)} runs)",
            spread(restarts),
            target=f"< {RESTART_TARGET:g} s",
            met=stats.median(restarts) < RESTART_TARGET,
            notes=f"herds stopped first; load {restart_load}.",
        ),
    ]
    return out


def storm_row(sizes: ScaleSizes, storms: list[dict[str, Any]], key: str) -> Row:
    n = sizes.agents
    times = [s["all_registered"] for s in storms]
    held = [s["all_held"] for s in storms]
    return Row(
        key,
        f"registration storm: {n:,} agents at once, {sizes.vtep} ({len(storms)} storms)",
        f"all registered: {spread(times)}; all holding the last revision: {spread(held)}",
        target=f"all registered < {STORM_TARGET:g} s",
        met=stats.median(times) < STORM_TARGET,
        notes=f"{sizes.herds} herd processes; each storm on a fresh cluster. Per storm: "
        + "; ".join(
            f"median agent registered at {stats.seconds(s['median_registered'])}, attempts "
            f"max {max(s['attempts'])} (mean {sum(s['attempts']) / len(s['attempts']):.2f}), "
            f"failures {s['failures'] or 'none'}, server CPU "
            + "/".join(f"{c:.1f}" for c in s["servers_cpu"])
            + f" s, herds CPU {s['herds_cpu']:.1f} s, load {s['load']}"
            for s in storms
        )
        + ".",
    )
