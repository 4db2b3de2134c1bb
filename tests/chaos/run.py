"""``python -m tests.chaos``: one chaos run, from namespaces to the figure line.

Two processes. The outer one (root namespace, needs root) builds the topology, re-executes
itself inside the client namespace with ``--inner``, and in its finalizer ends any replica the
inner one left (by PID, from the PID files) and deletes every namespace. The inner one starts
the replicas in their namespaces, drives the workload and the nemesis, heals, waits for the
replicas to converge, checks, writes ``report.json`` and prints one line:

    chaos seed=S: N ops (ok, failed, unknown), F faults, 0 lost, 0 duplicate, 0 changed,
    0 non-linearizable, healed in X s; logs: ...

Exit status: 0 when every check passed, 1 on any violation, 2 when the run itself broke.
Everything for the post-mortem stays in the run directory: ``history.jsonl`` (every attempt),
``faults.jsonl``, ``report.json``, ``final-state-N.json`` and ``cluster/replica-N.log``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import signal
import subprocess
import sys
import threading
import time
from dataclasses import asdict
from pathlib import Path
from types import FrameType
from typing import Any

from tests.chaos import checker
from tests.chaos.cluster import CONFIG, NetnsCluster, kill_stray
from tests.chaos.history import Allocation, Recorder, allocation
from tests.chaos.nemesis import KINDS, Nemesis
from tests.chaos.topology import Topology
from tests.chaos.workload import Workload
from tests.harness.cluster import ROOT
from tests.waiting import wait_until

HEAL_BOUND = 30.0  # a write must succeed this soon after the last fault is undone
CONVERGE_BOUND = 60.0
AFTER_HEAL = 3.0  # the workload keeps running this long after the heal (post-heal window)
PROBE_AGENT = "10.254.254.254"


def duration(text: str) -> float:
    match = re.fullmatch(r"(\d+(?:\.\d+)?)([smh]?)", text.strip())
    if match is None:
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration like 90s, 20m or 1h")
    return float(match.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600}[match.group(2)]


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="scripts/chaos", description=__doc__.split("\n\n")[0])
    p.add_argument("--seed", type=int, help="schedule and workload seed (default: random)")
    p.add_argument("--duration", type=duration, default=60.0, help="fault phase, e.g. 90s, 20m")
    p.add_argument("--agents", type=int, default=250, help="simulated agents (default 250)")
    p.add_argument("--think", type=float, default=0.5, help="mean pause between actions (s)")
    p.add_argument(
        "--faults",
        type=lambda text: tuple(text.split(",")),
        default=KINDS,
        help=f"comma-separated fault kinds (default all: {','.join(KINDS)})",
    )
    p.add_argument("--out", type=Path, help="run directory (default chaos-runs/<time>-seed<S>)")
    p.add_argument("--inner", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--prefix", help=argparse.SUPPRESS)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    unknown = set(args.faults) - set(KINDS)
    if unknown:
        parser().error(f"unknown fault kinds: {', '.join(sorted(unknown))}")
    if args.seed is None:
        args.seed = random.SystemRandom().randrange(1, 1_000_000)
    if args.out is None:
        runs = ROOT / "chaos-runs"
        runs.mkdir(exist_ok=True)
        (runs / ".gitignore").write_text("*\n")  # run directories are never committed
        args.out = runs / f"{time.strftime('%Y%m%d-%H%M%S')}-seed{args.seed}"
    if args.inner:
        return inner(args)
    return outer(args)


# -- outer: namespaces and clean-up -----------------------------------------------------------------


def _terminate(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


def outer(args: argparse.Namespace) -> int:
    if os.geteuid() != 0:
        print("chaos: needs root (network namespaces and nft)", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    signal.signal(signal.SIGTERM, _terminate)
    topology = Topology()
    proc: subprocess.Popen[bytes] | None = None
    try:
        topology.create()
        command = [
            "ip",
            "netns",
            "exec",
            topology.client,
            sys.executable,
            "-m",
            "tests.chaos",
            "--inner",
            "--prefix",
            topology.prefix,
            "--seed",
            str(args.seed),
            "--duration",
            str(args.duration),
            "--agents",
            str(args.agents),
            "--think",
            str(args.think),
            "--faults",
            ",".join(args.faults),
            "--out",
            str(args.out),
        ]
        proc = subprocess.Popen(command, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
        return proc.wait()
    finally:
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
        kill_stray(args.out / "cluster")
        topology.destroy()


# -- inner: the run -----------------------------------------------------------------------------------


def inner(args: argparse.Namespace) -> int:
    topology = Topology(prefix=args.prefix)
    cluster = NetnsCluster(args.out / "cluster", config_text=CONFIG, topology=topology)
    zero = time.monotonic()
    recorder = Recorder(args.out / "history.jsonl", zero)
    nemesis = Nemesis(cluster, topology, args.seed, zero, args.out / "faults.jsonl")
    nemesis.kinds = args.faults
    report = checker.Report()
    try:
        cluster.mount_all()
        cluster.start_all()
        workload = Workload(
            [r.url for r in cluster.replicas],
            cluster.token,
            recorder,
            args.seed,
            agents=args.agents,
            think=args.think,
        )
        report.healed_in = asyncio.run(drive(workload, nemesis, args.duration))
        finals = converge(cluster, report)
        recorder.close()
        check(report, recorder, workload, nemesis, finals, cluster, time.monotonic() - zero)
    except Exception as e:
        report.violations.append(f"the run broke: {type(e).__name__}: {e}")
        _write(args.out / "report.json", report, args.seed)
        print(f"chaos seed={args.seed}: run broke: {type(e).__name__}: {e}", flush=True)
        raise
    finally:
        nemesis.stop.set()
        cluster.stop_all()
        cluster.unmount_all()
    _write(args.out / "report.json", report, args.seed)
    print(report.figure(args.seed), flush=True)
    for violation in report.violations[:50]:
        print(f"  violation: {violation}", flush=True)
    print(f"  run directory: {args.out}", flush=True)
    return 1 if report.violations else 0


async def drive(workload: Workload, nemesis: Nemesis, seconds: float) -> float | None:
    """Workload under faults for ``seconds``, then heal; returns the heal time (None: no write
    succeeded within ``HEAL_BOUND``)."""
    async with workload:
        agents = asyncio.create_task(workload.run_until_stopped())
        until = time.monotonic() + seconds
        thread = threading.Thread(target=nemesis.run, args=(until,), name="nemesis", daemon=True)
        thread.start()
        try:
            while thread.is_alive():
                await asyncio.to_thread(thread.join, 1.0)
            await asyncio.to_thread(nemesis.heal)
            healed_at = time.monotonic()
            try:
                succeeded = await asyncio.wait_for(workload.probe(PROBE_AGENT), HEAL_BOUND)
            except TimeoutError:
                return None
            await asyncio.sleep(AFTER_HEAL)
            return succeeded - healed_at
        finally:
            nemesis.stop.set()
            workload.stop.set()
            await agents


def converge(cluster: NetnsCluster, report: checker.Report) -> list[bytes]:
    """Wait until every replica's local state is byte-identical at the same revision."""

    def same() -> list[bytes] | None:
        answers = [cluster.state(r, consistent=False) for r in cluster.replicas]
        if any(a.status_code != 200 for a in answers):
            return None
        revisions = {a.headers.get("X-Overlay-Revision") for a in answers}
        bodies = [a.content for a in answers]
        return bodies if len(revisions) == 1 and len(set(bodies)) == 1 else None

    try:
        bodies: list[bytes] = wait_until("identical replica states", same, CONVERGE_BOUND, 0.2)
        return bodies
    except AssertionError as e:
        report.violations.append(
            f"replicas did not converge: {e}: " + "; ".join(cluster.describe())
        )
        return [cluster.state(r, consistent=False).content for r in cluster.replicas]


def check(
    report: checker.Report,
    recorder: Recorder,
    workload: Workload,
    nemesis: Nemesis,
    finals: list[bytes],
    cluster: NetnsCluster,
    end: float,
) -> None:
    out = cluster.root.parent
    states, bodies = [], [json.loads(body) for body in finals]
    for index, body in enumerate(finals):
        (out / f"final-state-{index + 1}.json").write_bytes(body)
        states.append([(a["ip"], allocation(a, churn=True)) for a in bodies[index]["agents"]])
    final: dict[str, Allocation] = {a["ip"]: allocation(a) for a in bodies[0]["agents"]}
    ops = [op for op in recorder.ops if op.complete is not None]
    checker.count_outcomes(report, ops)
    report.faults = len(nemesis.faults)
    report.power_cuts_two = sum(f.kind == "power_cut_two" for f in nemesis.faults)
    report.power_cuts_all = sum(f.kind == "power_cut_all" for f in nemesis.faults)
    checker.check_agents(report, [op for op in ops if op.agent != PROBE_AGENT], final, end)
    checker.check_overlapping_answers(report, ops)
    checker.check_final_states(report, states)
    checker.check_final_networks(report, bodies)
    report.add("duplicate", workload.state_problems)
    report.add("outside_network", workload.outside_networks)
    report.network_changes = workload.network_changes
    report.violations += workload.unexpected + nemesis.problems
    if report.healed_in is None:
        report.violations.append(f"no write succeeded within {HEAL_BOUND:g} s of the heal")
    report.violations += _pool_differences(cluster)
    checker.check_logs(report, [r.log for r in cluster.replicas])


def _pool_differences(cluster: NetnsCluster) -> list[str]:
    """Pool gauges (used/free per pool) must match too: they cover freed slots, not just agents."""
    pools = []
    for replica in cluster.replicas:
        metrics = cluster.metrics(replica)
        pools.append({k: v for k, v in metrics.items() if "_blocks_" in k or "_vteps_" in k})
    if pools[0] == pools[1] == pools[2]:
        return []
    return [f"pool gauges differ between replicas: {pools}"]


def _write(path: Path, report: checker.Report, seed: int) -> None:
    plain: dict[str, Any] = asdict(report)
    plain["seed"] = seed
    plain["figure"] = report.figure(seed)
    path.write_text(json.dumps(plain, indent=2) + "\n")
