"""``GET /overlay-master/state`` at full size (4,094 agents, two overlays) against its floor.

The floor is ``bench.floor``: the master's web stack (FastAPI behind the master's own ASGI
middleware, on uvicorn with httptools and uvloop, one worker) returning the very bytes the master
returned, pre-encoded. One client (``bench.wire``, keep-alive) makes sequential requests.

Warm (from the master's cache: it encodes the state once per revision): interleaved in blocks of
ten over the four endpoints (floor; linearizable on the leader; linearizable on a follower;
``consistent=false`` on a follower) so that all see the same noise, after a few warm-ups each.

Cold (the first read after a write, which has to encode): each sample first changes one agent's
status through the leader (a new revision), then, once the replica read from has applied it
(for the local read: polled through that agent's own record, which encodes nothing of the state),
times one state request, then one of the floor's. So cold and floor samples alternate too.
Each row gives the p50 and p99 of its samples; the spread is that of the blocks' (warm) or the
rounds' (cold) medians.
"""

from __future__ import annotations

import asyncio
import json
import time

import httpx

from bench import floor, processes, stats, wire
from bench.clusters import agent_ip
from bench.context import Context
from bench.report import Row

BLOCK = 10
WARMUP = 5
TARGET = 1.5  # issue 7: p50 within 1.5x of the floor
LABELS = {
    "leader": "linearizable (default), on the leader",
    "follower": "linearizable (default), on a follower",
    "local": "consistent=false, on a follower",
}
Endpoints = dict[str, tuple[str, str]]


async def timed(conn: wire.HttpConnection, path: str) -> tuple[float, int]:
    started = time.monotonic()
    answer = await conn.request("GET", path)
    if answer.status != 200:
        raise AssertionError(f"{path} answered {answer.status}: {answer.body[:200]!r}")
    return answer.arrived - started, len(answer.body)


class Writer:
    """Changes one agent's status through the leader: every call is a new revision."""

    def __init__(self, leader: str, follower: str, token: str, ip: str) -> None:
        self.leader, self.follower, self.ip = leader, follower, ip
        self.headers = {"Authorization": f"Bearer {token}"}
        self.count = 0

    async def write(self) -> int:
        self.count += 1
        overlays = [{"name": "dcos", "status": "STATUS_FAILED", "error": f"bench {self.count}"}]
        body = json.dumps({"overlays": overlays}).encode()
        path = f"/overlay-master/agents/{self.ip}/status"
        answer = await wire.fetch(self.leader, "PUT", path, body, self.headers)
        if answer.status != 200:
            raise AssertionError(f"status report answered {answer.status}: {answer.body[:200]!r}")
        return answer.revision

    async def applied_on_follower(self, revision: int) -> None:
        path = f"/overlay-master/agents/{self.ip}?consistent=false"
        deadline = time.monotonic() + 10
        while (await wire.fetch(self.follower, "GET", path)).revision < revision:
            if time.monotonic() > deadline:
                raise AssertionError(f"the follower did not apply revision {revision} in 10 s")
            await asyncio.sleep(0.002)


async def measure(
    endpoints: Endpoints, requests: int, cold_rounds: int, writer: Writer
) -> tuple[dict[str, list[list[float]]], dict[str, list[float]], dict[str, list[float]]]:
    """Warm blocks per endpoint; cold samples per endpoint and the floor samples next to them."""
    conns = {name: await wire.connect(address) for name, (address, _) in endpoints.items()}
    sizes = {}
    for name, (_, path) in endpoints.items():
        for _ in range(WARMUP):
            _, sizes[name] = await timed(conns[name], path)
    if len(set(sizes.values())) != 1:
        raise AssertionError(f"bodies differ in size: {sizes}")
    warm: dict[str, list[list[float]]] = {name: [] for name in endpoints}
    for _ in range(0, requests, BLOCK):
        for name, (_, path) in endpoints.items():
            warm[name].append([(await timed(conns[name], path))[0] for _ in range(BLOCK)])
    cold: dict[str, list[float]] = {name: [] for name in LABELS}
    cold_floor: dict[str, list[float]] = {name: [] for name in LABELS}
    for _ in range(cold_rounds):
        for name in LABELS:
            revision = await writer.write()
            if name == "local":
                await writer.applied_on_follower(revision)
            cold[name].append((await timed(conns[name], endpoints[name][1]))[0])
            cold_floor[name].append((await timed(conns["floor"], endpoints["floor"][1]))[0])
    for conn in conns.values():
        conn.close()
    return warm, cold, cold_floor


def run(ctx: Context) -> list[Row]:
    main = ctx.main
    assert main is not None and ctx.main_agents > 0, "run the throughput benchmark first"
    leader = main.leader()
    ip = agent_ip(ctx.sizes.agents + 1000, 13)
    answer = main.register(leader, ip)
    answer.raise_for_status()
    ctx.main_agents += 1
    body = httpx.get(f"{leader.url}/overlay-master/state", timeout=30).content
    agents = len(json.loads(body)["agents"])
    if agents != ctx.main_agents:
        raise AssertionError(f"state holds {agents} agents, expected {ctx.main_agents}")
    path = ctx.workdir / "state-body.json"
    path.write_bytes(body)
    floor_http, floor_proc = floor.launch(path)
    try:
        follower = next(r for r in main.replicas if r is not leader)
        endpoints = {
            "floor": (floor_http, "/floor"),
            "leader": (leader.http, "/overlay-master/state"),
            "follower": (follower.http, "/overlay-master/state"),
            "local": (follower.http, "/overlay-master/state?consistent=false"),
        }
        writer = Writer(leader.http, follower.http, main.token, ip)
        warm, cold, cold_floor = asyncio.run(
            measure(endpoints, ctx.sizes.state_requests, ctx.sizes.state_cold_rounds, writer)
        )
    finally:
        processes.stop(floor_proc)
    ctx.facts["state_bytes"] = len(body)
    return warm_rows(warm, agents, len(body)) + cold_rows(cold, cold_floor, agents, len(body))


def warm_rows(blocks: dict[str, list[list[float]]], agents: int, size: int) -> list[Row]:
    floor_all = [t for block in blocks["floor"] for t in block]
    floor50, floor99 = stats.percentile(floor_all, 50), stats.percentile(floor_all, 99)
    rows = []
    for name, label in LABELS.items():
        times = [t for block in blocks[name] for t in block]
        p50, p99 = stats.percentile(times, 50), stats.percentile(times, 99)
        medians = [stats.median(block) for block in blocks[name]]
        rows.append(
            Row(
                f"state.{name}",
                f"GET state, {agents:,} agents, 2 overlays ({stats.size(size)}), cached: {label}",
                f"p50 {stats.seconds(p50)}, p99 {stats.seconds(p99)}; block medians "
                f"{stats.seconds(min(medians))} to {stats.seconds(max(medians))} "
                f"({len(medians)} blocks)",
                f"same bytes, pre-encoded: p50 {stats.seconds(floor50)}, "
                f"p99 {stats.seconds(floor99)}",
                f"{p50 / floor50:.2f}x p50, {p99 / floor99:.2f}x p99",
                f"p50 within {TARGET}x of the floor",
                p50 / floor50 <= TARGET,
                notes=f"{len(times)} sequential requests on one keep-alive connection, "
                f"interleaved in blocks of {BLOCK} with the floor's, after {WARMUP} warm-ups.",
            )
        )
    return rows


def cold_rows(
    cold: dict[str, list[float]], floors: dict[str, list[float]], agents: int, size: int
) -> list[Row]:
    rows = []
    for name, label in LABELS.items():
        times, base = cold[name], floors[name]
        p50, p99 = stats.percentile(times, 50), stats.percentile(times, 99)
        floor50 = stats.percentile(base, 50)
        rows.append(
            Row(
                f"state.cold.{name}",
                f"GET state, {agents:,} agents ({stats.size(size)}), first read after a write: "
                f"{label}",
                f"{stats.spread(times, what='writes')}; p99 {stats.seconds(p99)}",
                f"same bytes, pre-encoded: {stats.spread(base, what='requests')}",
                f"{p50 / floor50:.2f}x p50",
                f"p50 within {TARGET}x of the floor",
                p50 / floor50 <= TARGET,
                notes="Each sample follows a status report of one agent through the leader (a "
                "new revision, so nothing of this revision is encoded yet), and is followed by "
                "one floor request.",
            )
        )
    return rows
