"""The watchers of the load generator (``loadgen watch``): long-poll clients as agents and the
Networking page make them, on the master's replicas and on the floors, and the rounds that change
something and time until every watcher holds it. Runs inside the load generator's process.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import Sequence
from typing import Any

from bench import processes, wire

WATCH_TIMEOUT = 240  # seconds a long poll may park; longer than any round
CONNECT_BATCH = 200


def cpu() -> float:
    t = os.times()
    return t.user + t.system


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
        self, conn: wire.HttpConnection, since: int, replica: int, tracker: Tracker, query: str
    ) -> None:
        self.conn, self.since, self.replica, self.tracker = conn, since, replica, tracker
        self.query = query
        self.held: dict[int, float] = {}  # revision -> when this watcher first held it
        self.parked = asyncio.Event()  # a long poll for `since` is on the wire
        self.error: str | None = None

    async def loop(self) -> None:
        try:
            while True:
                path = f"/overlay-master/watch?since={self.since}&timeout={WATCH_TIMEOUT}"
                pending = self.conn.send("GET", path + self.query)
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


class System:
    """One set of servers (the master's replicas, or the floors) and its watchers: ``agents``
    (plain long polls, as agents make them) and ``pages`` (``include=containers``, as the
    Networking page makes them), each group with its own tracker."""

    def __init__(self, spec: dict[str, Any]) -> None:
        self.name: str = spec["name"]
        self.targets: list[str] = spec["targets"]
        self.pids: list[int] = spec["pids"]
        self.spec = spec
        self.groups: dict[str, list[Watcher]] = {"agents": [], "pages": []}
        self.trackers = {name: Tracker() for name in self.groups}
        self.tasks: list[asyncio.Task[None]] = []
        headers = {"Authorization": f"Bearer {spec.get('token')}"}
        control = spec["control"]  # fresh connections: uvicorn drops ones idle for 5 s
        self.changes: MasterChanges | FloorChanges = (
            FloorChanges(self.targets) if spec.get("floor") else MasterChanges(control, headers)
        )
        self.before: list[dict[str, float]] = []
        self.after: list[dict[str, float]] = []

    @property
    def watchers(self) -> list[Watcher]:
        return self.groups["agents"] + self.groups["pages"]

    async def connect(self) -> None:
        """Connect every watcher; memory and descriptors are sampled around the agents' group."""
        self.before = replica_samples(self.pids)  # before our first connection
        first = await wire.fetch(
            self.spec["control"], "GET", "/overlay-master/watch?since=0&timeout=0"
        )
        for group, count, query in (
            ("agents", self.spec["watchers"], ""),
            ("pages", self.spec.get("pages", 0), "&include=containers"),
        ):
            await self._connect(group, count, query, first.revision)
            if group == "agents":
                await self._settle_connections()
                self.after = replica_samples(self.pids)

    async def _connect(self, group: str, count: int, query: str, revision: int) -> None:
        watchers, tracker = self.groups[group], self.trackers[group]
        for start in range(0, count, CONNECT_BATCH):
            batch = range(start, min(start + CONNECT_BATCH, count))
            targets = [self.targets[i % len(self.targets)] for i in batch]
            conns = await asyncio.gather(*(wire.connect(t) for t in targets))
            for i, conn in zip(batch, conns, strict=True):
                w = Watcher(conn, revision, i % len(self.targets), tracker, query)
                watchers.append(w)
                self.tasks.append(asyncio.create_task(w.loop()))
        await wait_for(lambda: all(w.parked.is_set() for w in watchers), 60, "watchers parked")

    async def _settle_connections(self) -> None:
        per_replica = self.per_replica()
        await wait_for(
            lambda: all(
                processes.sample(pid).fds >= b["fds"] + n
                for pid, b, n in zip(self.pids, self.before, per_replica, strict=True)
            ),
            60,
            "replicas holding every watcher's connection",
        )
        await asyncio.sleep(0.5)  # let the replicas read and park every request before sampling

    def per_replica(self) -> list[int]:
        agents = self.groups["agents"]
        return [sum(1 for w in agents if w.replica == r) for r in range(len(self.targets))]

    def close(self) -> dict[str, Any]:
        errors = [w.error for w in self.watchers if w.error]
        for task in self.tasks:
            task.cancel()
        for w in self.watchers:
            w.conn.close()
        return {
            "retries": getattr(self.changes, "retries", 0),
            "per_replica": self.per_replica(),
            "before": self.before,
            "after": self.after,
            "errors": errors[:3],
            "error_count": len(errors),
        }


async def watch(spec: dict[str, Any]) -> dict[str, Any]:
    """Every system's watchers connect (one system after the other), then the rounds run, each
    on every system in turn, the first system alternating: noise hits them alike."""
    systems = [System(s) for s in spec["systems"]]
    for system in systems:
        await system.connect()
    rounds: dict[str, list[dict[str, Any]]] = {s.name: [] for s in systems}
    for k, plan in enumerate(spec["rounds"]):
        for system in systems if k % 2 == 0 else systems[::-1]:
            rounds[system.name].append(await one_round(system, plan))
    return {s.name: {**s.close(), "rounds": rounds[s.name]} for s in systems}


class MasterChanges:
    """Round steps on the master: a settling change, then the measured one.

    ``plan["kind"]``: "agent" (delete one agent, then register a new one), "network" (delete
    the previous round's network if any, then add one) or "containers" (one agent reports a
    list, then another). Like a real client, a step retries the same (idempotent) request on
    503 until it is acknowledged; ``retries`` counts those, so a leader change shows up.
    """

    RETRY_FOR = 30.0

    def __init__(self, control: str, headers: dict[str, str]) -> None:
        self.control, self.headers = control, headers
        self.retries = 0

    async def call(self, method: str, path: str, body: bytes = b"") -> wire.Answer:
        deadline = time.monotonic() + self.RETRY_FOR
        while True:
            conn = await wire.connect(self.control)
            try:
                answer = await conn.request(method, path, body, self.headers)
            finally:
                conn.close()
            if answer.status != 503 or time.monotonic() > deadline:
                break
            self.retries += 1
            await asyncio.sleep(0.05)
        if answer.status not in (200, 201):
            raise RuntimeError(f"{method} {path} answered {answer.status}: {answer.body[:300]!r}")
        return answer

    async def settle_step(self, plan: dict[str, Any]) -> int:
        kind = plan["kind"]
        if kind == "agent":
            body = json.dumps({"agents": [plan["delete"]]}).encode()
            return (await self.call("POST", "/overlay-master/agents/delete", body)).revision
        if kind == "network":
            if plan.get("delete"):
                path = f"/overlay-master/networks/{plan['delete']}?force=true"
                return (await self.call("DELETE", path)).revision
            return (await self.call("GET", "/overlay-master/watch?since=0&timeout=0")).revision
        path = f"/overlay-master/agents/{plan['agent']}/containers"
        return (await self.call("PUT", path, json.dumps(plan["settle"]).encode())).revision

    async def measured_step(self, plan: dict[str, Any]) -> tuple[float, int, float]:
        """Returns (started, revision, acknowledged)."""
        kind = plan["kind"]
        if kind == "agent":
            method, path, doc = "POST", "/overlay-master/agents", {"ip": plan["register"]}
        elif kind == "network":
            method, path, doc = "POST", "/overlay-master/networks", plan["add"]
        else:
            method, path = "PUT", f"/overlay-master/agents/{plan['agent']}/containers"
            doc = plan["report"]
        body = json.dumps(doc).encode()
        started = time.monotonic()
        answer = await self.call(method, path, body)
        return started, answer.revision, answer.arrived


class FloorChanges:
    """Round steps on the bare floor endpoints: bump every floor's revision at once."""

    def __init__(self, targets: list[str]) -> None:
        self.targets = targets

    async def settle_step(self, plan: dict[str, Any]) -> int:
        return (await self.measured_step(plan))[1]

    async def measured_step(self, plan: dict[str, Any]) -> tuple[float, int, float]:
        conns = [await wire.connect(t) for t in self.targets]
        started = time.monotonic()
        answers = await asyncio.gather(*(c.request("POST", "/bump") for c in conns))
        for c in conns:
            c.close()
        if len({a.revision for a in answers}) != 1:
            raise RuntimeError("the floors disagree on the revision")
        return started, answers[0].revision, max(a.arrived for a in answers)


async def one_round(system: System, plan: dict[str, Any]) -> dict[str, Any]:
    changes, pids = system.changes, system.pids
    watchers = system.watchers
    settled = await changes.settle_step(plan)

    def short() -> list[Any]:
        return [w for w in watchers if not (w.since >= settled and w.parked.is_set())]

    try:
        await wait_for(lambda: not short(), 60, "watchers parked after the settling step")
    except TimeoutError as e:
        behind = short()
        seen = sorted({(w.since, w.parked.is_set(), w.error) for w in behind}, key=str)[:5]
        raise TimeoutError(
            f"{e}: {len(behind)} of {len(watchers)} short of revision {settled} "
            f"((since, parked, error): {seen})"
        ) from None
    await asyncio.sleep(0.3)  # the parked requests reach the replicas
    group = plan.get("measure", "agents")
    measured, tracker = system.groups[group], system.trackers[group]
    cpu0, replicas0 = cpu(), [processes.cpu_seconds(pid) for pid in pids]
    started, target, acked = await changes.measured_step(plan)
    if target <= settled:
        raise RuntimeError(f"the measured change did not advance the revision ({target})")
    tracker.arm(target, measured)
    try:
        await asyncio.wait_for(tracker.done.wait(), 60)
    except TimeoutError:
        raise TimeoutError(
            f"{tracker.remaining} watchers still short of revision {target} after 60 s"
        ) from None
    finished = time.monotonic()
    client_cpu = cpu() - cpu0
    replicas_cpu = [processes.cpu_seconds(pid) - c for pid, c in zip(pids, replicas0, strict=True)]
    latencies = [held - started for w in measured if (held := w.held_since(target)) is not None]
    return {
        "ack": acked - started,
        "latencies": sorted(latencies),
        "window": finished - started,
        "client_cpu": client_cpu,
        "replicas_cpu": replicas_cpu,
        "revision": target,
    }
