"""Simulated agents: each registers, re-registers, reads its own record, deletes itself and comes
back, through all three replicas, retrying the way a real agent does.

One asyncio task per agent, one operation at a time (so each agent's own operations never
overlap, except that an unknown-outcome write may still take effect later). Every HTTP attempt
is an ``Op`` in the history. A logical action is retried on 503 and connection errors, on the
next replica, after the server's ``Retry-After`` (jittered) until it gets a definite answer or
the run stops. An observer task reads whole states (linearizable and local copies) and checks
each answer for shared addresses on the spot (storing every state would be too large).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from dataclasses import dataclass, field
from typing import Any

import httpx

from tests.chaos.history import (
    CHURN,
    DELETE,
    FAILED,
    OK,
    READ,
    REGISTER,
    UNKNOWN,
    Allocation,
    Op,
    Recorder,
    allocation,
    outside_live_networks,
    shared,
)

NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
TIMEOUT = httpx.Timeout(8.0, connect=3.0, pool=5.0)


def agent_ips(count: int) -> list[str]:
    return [f"10.77.{i // 200}.{i % 200 + 1}" for i in range(count)]


def state_allocations(body: dict[str, Any]) -> list[tuple[str, Allocation]]:
    """Every agent's holdings, the operator's networks included (for uniqueness)."""
    return [(agent["ip"], allocation(agent, churn=True)) for agent in body["agents"]]


# The operator's networks: each added and deleted again and again, never overlapping the others.
CHURN_NETWORKS = [
    {"name": f"{CHURN}{i}", "subnet": f"10.{200 + i}.0.0/16", "prefix": 26} for i in range(2)
]


@dataclass
class Workload:
    urls: list[str]
    token: str
    recorder: Recorder
    seed: int
    agents: int = 250
    think: float = 0.5  # mean pause between an agent's actions (s)
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    state_reads: int = 0
    networks: bool = True  # an operator adds and deletes networks while the agents work
    network_changes: int = 0  # acknowledged network adds and deletes
    state_problems: list[str] = field(default_factory=list)
    outside_networks: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    clients: list[httpx.AsyncClient] = field(default_factory=list)

    async def __aenter__(self) -> Workload:
        limits = httpx.Limits(max_connections=self.agents + 20, max_keepalive_connections=64)
        self.clients = [
            httpx.AsyncClient(base_url=url, timeout=TIMEOUT, limits=limits) for url in self.urls
        ]
        return self

    async def __aexit__(self, *exc: object) -> None:
        for client in self.clients:
            await client.aclose()

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    # -- one attempt --------------------------------------------------------------------------------

    async def attempt(self, kind: str, ip: str, replica: int) -> tuple[Op, float | None]:
        """One HTTP attempt, recorded. Returns the op and, if the agent should retry, a delay."""
        op = self.recorder.begin(ip, kind, replica, time.monotonic())
        client = self.clients[replica]
        try:
            if kind == REGISTER:
                body = {"ip": ip, "mesos_bridge": True, "docker_bridge": True}
                response = await client.post("/overlay-master/agents", json=body, headers=self.auth)
            elif kind == DELETE:
                body = {"agents": [ip]}
                response = await client.post(
                    "/overlay-master/agents/delete", json=body, headers=self.auth
                )
            else:
                response = await client.get(f"/overlay-master/agents/{ip}")
        except NOT_SENT as e:
            self.recorder.end(op, time.monotonic(), FAILED, error=type(e).__name__)
            return op, 1.0
        except httpx.HTTPError as e:
            outcome = FAILED if kind == READ else UNKNOWN
            self.recorder.end(op, time.monotonic(), outcome, error=type(e).__name__)
            return op, 1.0
        return op, self._answer(op, response)

    def _answer(self, op: Op, response: httpx.Response) -> float | None:
        now, status = time.monotonic(), response.status_code
        if status == 200:
            value = allocation(response.json()) if op.kind != DELETE else None
            self.recorder.end(op, now, OK, status, value)
            return None
        if status == 404 and op.kind == READ:
            self.recorder.end(op, now, OK, status, None)
            return None
        error = response.text[:200]
        if status == 503:
            outcome = FAILED if op.kind == READ else UNKNOWN
            self.recorder.end(op, now, outcome, status, error=error)
            return float(response.headers.get("Retry-After", "1"))
        self.unexpected.append(f"op {op.id} {op.kind} {op.agent}: HTTP {status} {error}")
        self.recorder.end(op, now, FAILED, status, error=error)
        return 1.0

    async def perform(self, kind: str, ip: str, rng: random.Random, start: int) -> Op | None:
        """Retry one logical action until it has a definite answer (or the run stops)."""
        replica = start
        while not self.stop.is_set():
            op, retry = await self.attempt(kind, ip, replica)
            if retry is None:
                return op
            replica = (replica + 1) % len(self.clients)
            await self._pause(retry * rng.uniform(0.3, 1.0))
        return None

    async def _pause(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.stop.wait(), seconds)

    # -- the agents ---------------------------------------------------------------------------------

    async def agent(self, ip: str) -> None:
        rng = random.Random(f"{self.seed}/{ip}")
        registered = False
        await self._pause(rng.uniform(0, 2 * self.think))
        while not self.stop.is_set():
            start = rng.randrange(len(self.clients))
            if not registered:
                kind = REGISTER
            else:
                kind = rng.choices([READ, REGISTER, DELETE], weights=[55, 30, 15])[0]
            op = await self.perform(kind, ip, rng, start)
            if op is not None:
                registered = kind != DELETE
            await self._pause(rng.expovariate(1 / self.think))

    async def observer(self) -> None:
        """Whole-state reads, alternating linearizable and local, rotating replicas."""
        turn = 0
        while not self.stop.is_set():
            replica, consistent = turn % len(self.clients), turn % 2 == 0
            turn += 1
            params = {} if consistent else {"consistent": "false"}
            try:
                response = await self.clients[replica].get("/overlay-master/state", params=params)
            except httpx.HTTPError:
                response = None
            if response is not None and response.status_code == 200:
                self.state_reads += 1
                body = response.json()
                problems = shared(state_allocations(body))
                self.state_problems += [f"replica {replica + 1} state: {p}" for p in problems]
                outside = outside_live_networks(body)
                self.outside_networks += [f"replica {replica + 1} state: {p}" for p in outside]
            await self._pause(0.5)

    async def probe(self, ip: str) -> float:
        """Register ``ip`` through every replica at once, each retrying until it succeeds;
        return when (monotonic) the first one did."""

        async def through(replica: int) -> float:
            while True:
                op, _ = await self.attempt(REGISTER, ip, replica)
                if op.outcome == OK:
                    return time.monotonic()
                await asyncio.sleep(0.05)

        probes = [asyncio.create_task(through(r)) for r in range(len(self.clients))]
        try:
            done, _ = await asyncio.wait(probes, return_when=asyncio.FIRST_COMPLETED)
            return min(task.result() for task in done)
        finally:
            for task in probes:
                task.cancel()
            await asyncio.gather(*probes, return_exceptions=True)

    async def operator(self) -> None:
        """Adds a network, lets the agents work with it, deletes it (forced: agents hold blocks
        of it), and again, through rotating replicas. Each action is retried until it has a
        definite answer; a retry that finds it done (the first try took effect) counts as done."""
        rng = random.Random(f"{self.seed}/operator")
        turn = 0
        while not self.stop.is_set():
            body = CHURN_NETWORKS[turn % len(CHURN_NETWORKS)]
            turn += 1
            if await self._network(rng, "POST", "/overlay-master/networks", body, "network_exists"):
                await self._pause(rng.uniform(1, 4) * self.think * 4)
                path = f"/overlay-master/networks/{body['name']}"
                await self._network(rng, "DELETE", path, None, "unknown_network")
            await self._pause(rng.uniform(0.5, 2) * self.think * 4)

    async def _network(
        self, rng: random.Random, method: str, path: str, body: Any, done_reason: str
    ) -> bool:
        replica = rng.randrange(len(self.clients))
        params = {"force": "true"} if method == "DELETE" else None
        while not self.stop.is_set():
            try:
                response = await self.clients[replica].request(
                    method, path, json=body, params=params, headers=self.auth
                )
            except httpx.HTTPError:
                response = None
            if response is not None and response.status_code in (200, 201):
                self.network_changes += 1
                return True
            if response is not None and response.status_code in (404, 409):
                if response.json().get("error") == done_reason:
                    self.network_changes += 1  # a try whose outcome was unknown took effect
                    return True
                self.unexpected.append(f"network {method} {path}: {response.text[:200]}")
                return False
            if response is not None and response.status_code != 503:
                self.unexpected.append(f"network {method} {path}: {response.text[:200]}")
                return False
            replica = (replica + 1) % len(self.clients)
            await self._pause(rng.uniform(0.3, 1.0))
        return False

    async def run_until_stopped(self) -> None:
        tasks = [asyncio.create_task(self.agent(ip)) for ip in agent_ips(self.agents)]
        tasks.append(asyncio.create_task(self.observer()))
        if self.networks:
            tasks.append(asyncio.create_task(self.operator()))
        await asyncio.gather(*tasks)
