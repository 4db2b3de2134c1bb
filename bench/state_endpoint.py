"""``GET /overlay-master/state`` at full size (4,094 agents, two overlays) against its floor.

The floor is ``bench.floor``: the same stack (FastAPI on uvicorn, one worker) returning the very
bytes the master returned, pre-encoded. One client (``bench.wire``, keep-alive) makes sequential
requests, interleaved in blocks of ten over the four endpoints (floor; linearizable on the leader;
linearizable on a follower; ``consistent=false`` on a follower) so that all see the same noise.
A few warm-up requests per endpoint come first (the master encodes the state once per revision).
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
TARGET = 1.5


async def timed(conn: wire.HttpConnection, path: str) -> tuple[float, int]:
    started = time.monotonic()
    answer = await conn.request("GET", path)
    if answer.status != 200:
        raise AssertionError(f"{path} answered {answer.status}: {answer.body[:200]!r}")
    return answer.arrived - started, len(answer.body)


async def measure(endpoints: dict[str, tuple[str, str]], requests: int) -> dict[str, list[float]]:
    conns = {name: await wire.connect(address) for name, (address, _) in endpoints.items()}
    sizes = {}
    for name, (_, path) in endpoints.items():
        for _ in range(WARMUP):
            _, sizes[name] = await timed(conns[name], path)
    if len(set(sizes.values())) != 1:
        raise AssertionError(f"bodies differ in size: {sizes}")
    times: dict[str, list[float]] = {name: [] for name in endpoints}
    for _ in range(0, requests, BLOCK):
        for name, (_, path) in endpoints.items():
            for _ in range(BLOCK):
                times[name].append((await timed(conns[name], path))[0])
    for conn in conns.values():
        conn.close()
    return times


def run(ctx: Context) -> list[Row]:
    main = ctx.main
    assert main is not None and ctx.main_agents > 0, "run the throughput benchmark first"
    leader = main.leader()
    answer = main.register(leader, agent_ip(ctx.sizes.agents + 1000, 13))
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
        times = asyncio.run(measure(endpoints, ctx.sizes.state_requests))
    finally:
        processes.stop(floor_proc)
    ctx.facts["state_bytes"] = len(body)
    return rows_for(times, agents, len(body))


def rows_for(times: dict[str, list[float]], agents: int, size: int) -> list[Row]:
    floor50, floor99 = stats.percentile(times["floor"], 50), stats.percentile(times["floor"], 99)
    labels = {
        "leader": "linearizable (default), on the leader",
        "follower": "linearizable (default), on a follower",
        "local": "consistent=false, on a follower",
    }
    rows = []
    for name, label in labels.items():
        p50, p99 = stats.percentile(times[name], 50), stats.percentile(times[name], 99)
        rows.append(
            Row(
                f"state.{name}",
                f"GET state, {agents:,} agents, 2 overlays ({stats.size(size)}): {label}",
                f"p50 {stats.seconds(p50)}, p99 {stats.seconds(p99)}",
                f"bare endpoint, same bytes: p50 {stats.seconds(floor50)}, "
                f"p99 {stats.seconds(floor99)}",
                f"{p50 / floor50:.2f}x p50, {p99 / floor99:.2f}x p99",
                f"p50 within {TARGET}x of the floor",
                p50 / floor50 <= TARGET,
                notes=f"{len(times[name])} sequential requests on one keep-alive connection, "
                f"interleaved in blocks of {BLOCK} with the floor's, after {WARMUP} warm-ups.",
            )
        )
    return rows
