"""Issue 2's done-criterion: 4,094 registrations on the default config in the pure allocator.

The allocator runs in this process, no Raft, no I/O. Each registration is timed alone with
``perf_counter_ns``. The 4,094th registration (the last VTEP of the /20) is compared with the
median one: if allocation walked the previous allocations it would cost ~4,000x more. The same
check on a far larger VTEP subnet (a /16: 65,534 agents) shows the cost does not grow with size.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from bench import stats
from bench.clusters import agent_ip
from bench.context import Context
from bench.report import Row
from overlay_master import allocator
from overlay_master.config import default_network
from overlay_master.network import to_plain

TOTAL_TARGET = 1.0


@dataclass(frozen=True)
class Walk:
    total: float
    each: list[float]


def walk(vtep_subnet: str | None = None) -> Walk:
    """Register agents until the VTEP pool is full; time each registration."""
    plain = to_plain(default_network())
    if vtep_subnet is not None:
        plain["vtep_subnet"] = vtep_subnet
    state = allocator.ClusterState()
    state.apply(allocator.configure(plain))
    assert state.vteps is not None
    count = state.vteps.size
    commands = [allocator.register(agent_ip(n)) for n in range(1, count + 1)]
    each = []
    clock = time.perf_counter_ns
    started = clock()
    for command in commands:
        t = clock()
        result = state.apply(command)
        each.append((clock() - t) / 1e9)
        if not isinstance(result, allocator.Registered):
            raise AssertionError(f"registration failed: {result}")
    total = (clock() - started) / 1e9
    if not isinstance(state.apply(allocator.register(agent_ip(count + 1))), allocator.Rejected):
        raise AssertionError("the VTEP pool should be exhausted")
    return Walk(total, each)


def run(ctx: Context) -> list[Row]:
    walks = [walk() for _ in range(ctx.sizes.alloc_repeats)]
    n = len(walks[0].each)
    totals = [w.total for w in walks]
    p50s = [stats.percentile(w.each, 50) for w in walks]
    p99s = [stats.percentile(w.each, 99) for w in walks]
    last = [w.each[-1] for w in walks]
    first_half = [stats.median(w.each[: n // 2]) for w in walks]
    large = walk(ctx.sizes.alloc_large_subnet)
    m = len(large.each)
    large_ratio = large.each[-1] / stats.percentile(large.each, 50)
    last_ratio = stats.median(last) / stats.median(p50s)
    return [
        Row(
            "alloc.total",
            f"allocator: register {n:,} agents, default config",
            f"total {stats.spread(totals)}; per command p50 {stats.seconds(stats.median(p50s))}, "
            f"p99 {stats.seconds(stats.median(p99s))} (worst run {stats.seconds(max(p99s))})",
            target=f"total under {TOTAL_TARGET:g} s (issue 2: well under a second)",
            met=stats.median(totals) < TOTAL_TARGET,
            notes="Pure `ClusterState.apply` in the runner process, each command timed alone "
            "(perf_counter_ns); every command checked to be `Registered`, and the next one "
            "checked to be rejected (`vtep_exhausted`).",
        ),
        Row(
            "alloc.last",
            f"allocator: the {n:,}th registration alone",
            stats.spread(last),
            f"median registration {stats.seconds(stats.median(p50s))}; "
            f"first half median {stats.seconds(stats.median(first_half))}",
            f"{last_ratio:.2f}x",
            "does not walk previous allocations (≈1x)",
            last_ratio < 5,
            notes=f"Same check on a {ctx.sizes.alloc_large_subnet} VTEP subnet: the {m:,}th "
            f"registration took {stats.seconds(large.each[-1])}, {large_ratio:.2f}x that walk's "
            f"median ({stats.seconds(stats.percentile(large.each, 50))}); total "
            f"{stats.seconds(large.total)}. A walk over previous allocations would cost thousands "
            "of times the median.",
        ),
    ]
