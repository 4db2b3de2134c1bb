"""The load generator: a process of its own, so its CPU time is measured apart from the runner's.

``python -m bench.loadgen throughput SPEC_JSON`` and ``python -m bench.loadgen watch SPEC_JSON``
print one JSON document on stdout. Both use ``bench.wire`` (an ``asyncio.Protocol`` that parses
only what it needs), and report their own CPU time so the report can show the client was not the
bottleneck.

throughput: ``clients`` connections spread round-robin over ``targets``; each makes synchronous
    writes back to back (waits for the answer before the next) until ``count`` writes are done.
    ``kind`` "http": ``POST /overlay-master/agents`` of new agents; "raw": ``inc`` lines.
watch: ``watchers`` long-poll clients spread round-robin over ``targets``, each looping on
    ``GET /overlay-master/watch?since=REV&timeout=S`` and remembering when it first held each
    revision. Per round: delete one agent (the watchers all move on and park again), then register
    one new agent and time until every watcher holds its revision. Also samples the replicas'
    ``/proc`` before and after the watchers connect (memory and descriptors per watcher).
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from typing import Any

from bench import processes, stats, wire
from bench.clusters import agent_ip

WATCH_TIMEOUT = 240  # seconds a long poll may park; longer than any round
CONNECT_BATCH = 200


def cpu() -> float:
    t = os.times()
    return t.user + t.system


# -- throughput -----------------------------------------------------------------------------------


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
                body = json.dumps({"ip": agent_ip(spec["first_agent"] + issued)}).encode()
                reply = await conn.request("POST", "/overlay-master/agents", body, headers)
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


# -- watchers -------------------------------------------------------------------------------------


class Tracker:
    """Counts watchers still short of a target revision without scanning them (event-driven)."""

    def __init__(self) -> None:
        self.target: int | None = None
        self.remaining = 0
        self.done = asyncio.Event()

    def arm(self, target: int, watchers: Sequence[Watcher]) -> None:
        self.target, self.done = target, asyncio.Event()
        self.remaining = sum(1 for w in watchers if w.since < target)
        if self.remaining == 0:
            self.done.set()

    def moved(self, old: int, new: int) -> None:
        if self.target is not None and old < self.target <= new:
            self.remaining -= 1
            if self.remaining == 0:
                self.done.set()


class Watcher:
    def __init__(
        self, conn: wire.HttpConnection, since: int, replica: int, tracker: Tracker
    ) -> None:
        self.conn, self.since, self.replica, self.tracker = conn, since, replica, tracker
        self.held: dict[int, float] = {}  # revision -> when this watcher first held it
        self.parked = asyncio.Event()  # a long poll for `since` is on the wire
        self.error: str | None = None

    async def loop(self) -> None:
        try:
            while True:
                path = f"/overlay-master/watch?since={self.since}&timeout={WATCH_TIMEOUT}"
                pending = self.conn.send("GET", path)
                self.parked.set()
                answer = await pending
                self.parked.clear()
                if answer.status != 200:
                    raise wire.WireError(f"watch answered {answer.status}: {answer.body[:200]!r}")
                revision = answer.revision
                if revision > self.since:
                    self.held[revision] = answer.arrived
                    self.tracker.moved(self.since, revision)
                    self.since = revision
        except (wire.WireError, OSError) as e:
            self.error = str(e)
            self.parked.set()

    def held_since(self, revision: int) -> float | None:
        times = [t for r, t in self.held.items() if r >= revision]
        return min(times) if times else None


async def wait_for(condition: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(0.01)


def replica_samples(pids: Sequence[int]) -> list[dict[str, float]]:
    samples = []
    for pid in pids:
        s = processes.sample(pid)
        samples.append({"rss": s.rss, "fds": s.fds, "cpu": s.cpu})
    return samples


async def watch(spec: dict[str, Any]) -> dict[str, Any]:
    targets: list[str] = spec["targets"]
    pids: list[int] = spec["pids"]
    headers = {"Authorization": f"Bearer {spec.get('token')}"}
    control = spec["register_target"]  # fresh connections: uvicorn drops ones idle for 5 s
    before = replica_samples(pids)  # before our first connection, which the server closes late
    first = await wire.fetch(control, "GET", "/overlay-master/watch?since=0&timeout=0")
    revision = first.revision
    watchers: list[Watcher] = []
    tracker = Tracker()
    tasks = []
    for start in range(0, spec["watchers"], CONNECT_BATCH):
        batch = range(start, min(start + CONNECT_BATCH, spec["watchers"]))
        conns = await asyncio.gather(*(wire.connect(targets[i % len(targets)]) for i in batch))
        for i, conn in zip(batch, conns, strict=True):
            watchers.append(Watcher(conn, revision, i % len(targets), tracker))
            tasks.append(asyncio.create_task(watchers[-1].loop()))
    per_replica = [sum(1 for w in watchers if w.replica == r) for r in range(len(targets))]
    await wait_for(lambda: all(w.parked.is_set() for w in watchers), 60, "watchers parked")
    await wait_for(
        lambda: all(
            processes.sample(pid).fds >= b["fds"] + n
            for pid, b, n in zip(pids, before, per_replica, strict=True)
        ),
        60,
        "replicas holding every watcher's connection",
    )
    await asyncio.sleep(0.5)  # let the replicas read and park every request before sampling
    after = replica_samples(pids)
    changes = FloorChanges(targets) if spec.get("floor") else MasterChanges(control, headers)
    rounds = []
    for plan in spec["rounds"]:
        rounds.append(await one_round(changes, watchers, tracker, pids, plan))
    errors = [w.error for w in watchers if w.error]
    for task in tasks:
        task.cancel()
    for w in watchers:
        w.conn.close()
    return {
        "retries": getattr(changes, "retries", 0),
        "per_replica": per_replica,
        "before": before,
        "after": after,
        "rounds": rounds,
        "errors": errors[:3],
        "error_count": len(errors),
    }


class MasterChanges:
    """Round steps on the master: delete one agent (settle), register one new agent (measured).

    Like a real agent, a step retries the same (idempotent) request on 503 until it is
    acknowledged; ``retries`` counts those, so a leader change during a round shows up.
    """

    RETRY_FOR = 30.0

    def __init__(self, control: str, headers: dict[str, str]) -> None:
        self.control, self.headers = control, headers
        self.retries = 0

    async def post(self, path: str, body: bytes) -> wire.Answer:
        deadline = time.monotonic() + self.RETRY_FOR
        while True:
            conn = await wire.connect(self.control)
            try:
                answer = await conn.request("POST", path, body, self.headers)
            finally:
                conn.close()
            if answer.status != 503 or time.monotonic() > deadline:
                break
            self.retries += 1
            await asyncio.sleep(0.05)
        if answer.status != 200:
            raise RuntimeError(f"{path} answered {answer.status}: {answer.body[:300]!r}")
        return answer

    async def settle_step(self, plan: dict[str, str]) -> int:
        body = json.dumps({"agents": [plan["delete"]]}).encode()
        return (await self.post("/overlay-master/agents/delete", body)).revision

    async def measured_step(self, plan: dict[str, str]) -> tuple[float, int, float]:
        """Returns (started, revision, acknowledged)."""
        body = json.dumps({"ip": plan["register"]}).encode()
        started = time.monotonic()
        registered = await self.post("/overlay-master/agents", body)
        return started, registered.revision, registered.arrived


class FloorChanges:
    """Round steps on the bare floor endpoints: bump every floor's revision at once."""

    def __init__(self, targets: list[str]) -> None:
        self.targets = targets

    async def settle_step(self, plan: dict[str, str]) -> int:
        return (await self.measured_step(plan))[1]

    async def measured_step(self, plan: dict[str, str]) -> tuple[float, int, float]:
        conns = [await wire.connect(t) for t in self.targets]
        started = time.monotonic()
        answers = await asyncio.gather(*(c.request("POST", "/bump") for c in conns))
        for c in conns:
            c.close()
        if len({a.revision for a in answers}) != 1:
            raise RuntimeError("the floors disagree on the revision")
        return started, answers[0].revision, max(a.arrived for a in answers)


async def one_round(
    changes: MasterChanges | FloorChanges,
    watchers: list[Watcher],
    tracker: Tracker,
    pids: Sequence[int],
    plan: dict[str, str],
) -> dict[str, Any]:
    settled = await changes.settle_step(plan)
    await wait_for(
        lambda: all(w.since >= settled and w.parked.is_set() for w in watchers),
        60,
        "watchers parked after the settling step",
    )
    await asyncio.sleep(0.3)  # the parked requests reach the replicas
    cpu0, replicas0 = cpu(), [processes.cpu_seconds(pid) for pid in pids]
    started, target, acked = await changes.measured_step(plan)
    if target <= settled:
        raise RuntimeError(f"the measured change did not advance the revision ({target})")
    tracker.arm(target, watchers)
    try:
        await asyncio.wait_for(tracker.done.wait(), 60)
    except TimeoutError:
        raise TimeoutError(
            f"{tracker.remaining} watchers still short of revision {target} after 60 s"
        ) from None
    finished = time.monotonic()
    client_cpu = cpu() - cpu0
    replicas_cpu = [processes.cpu_seconds(pid) - c for pid, c in zip(pids, replicas0, strict=True)]
    latencies = [held - started for w in watchers if (held := w.held_since(target)) is not None]
    return {
        "ack": acked - started,
        "latencies": sorted(latencies),
        "window": finished - started,
        "client_cpu": client_cpu,
        "replicas_cpu": replicas_cpu,
    }


def main() -> None:
    processes.raise_open_files()
    mode, spec = sys.argv[1], json.loads(sys.argv[2])
    runner = {"throughput": throughput, "watch": watch}[mode]
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
