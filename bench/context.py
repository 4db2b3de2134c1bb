"""What every benchmark gets: the mode, sizes, a scratch directory and the shared main cluster."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from bench.clusters import MAX_AGENTS, OverlayCluster


@dataclass(frozen=True)
class Sizes:
    alloc_repeats: int
    alloc_large_subnet: str  # a VTEP subnet far larger than the default, for the O(1) check
    failover_trials: int
    agents: int  # agents in the main cluster at full size
    throughput_segments: int
    watchers: tuple[int, int]
    convergence_rounds: int
    state_requests: int
    state_cold_rounds: int
    restarts: int
    live_agents: int
    live_rounds: int
    page_watchers: int
    network_pass_runs: int
    report_segments: int
    report_writes: int


FULL = Sizes(
    alloc_repeats=7,
    alloc_large_subnet="44.128.0.0/16",
    failover_trials=20,
    agents=MAX_AGENTS,
    throughput_segments=4,
    watchers=(1000, MAX_AGENTS),
    convergence_rounds=5,
    state_requests=200,
    state_cold_rounds=20,
    restarts=5,
    live_agents=1000,
    live_rounds=5,
    page_watchers=20,
    network_pass_runs=5,
    report_segments=4,
    report_writes=1500,
)
QUICK = Sizes(
    alloc_repeats=2,
    alloc_large_subnet="44.128.0.0/18",
    failover_trials=3,
    agents=300,
    throughput_segments=2,
    watchers=(100, 300),
    convergence_rounds=2,
    state_requests=30,
    state_cold_rounds=5,
    restarts=2,
    live_agents=100,
    live_rounds=2,
    page_watchers=5,
    network_pass_runs=2,
    report_segments=2,
    report_writes=200,
)


@dataclass
class Context:
    quick: bool
    workdir: Path
    sizes: Sizes
    main: OverlayCluster | None = None  # filled by the throughput benchmark, reused after it
    main_agents: int = 0
    facts: dict[str, object] = field(default_factory=dict)  # passed between benchmarks
