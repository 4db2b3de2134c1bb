"""The benchmark suite's quick mode runs end to end and produces every row (no timing checks).

Timings belong in BENCHMARKS.md, not in tests; this only keeps ``python -m bench`` from rotting.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.harness.cluster import ROOT

pytestmark = pytest.mark.integration

MASTER_ROWS = {
    "alloc.total",
    "alloc.last",
    "failover",
    "throughput",
    "throughput.nosync",
    "convergence.small",
    "watcher_cost.small",
    "convergence.large",
    "watcher_cost.large",
    "state.leader",
    "state.follower",
    "state.local",
    "state.cold.leader",
    "state.cold.follower",
    "state.cold.local",
    "live.network",
    "live.network_pass",
    "live.container_page",
    "live.reports",
    "footprint.rss",
    "footprint.disk",
    "restart",
    "scale.storm.half",
    "scale.storm",
    "scale.convergence",
    "scale.state",
    "scale.networks",
    "scale.rss",
    "scale.restart",
}
AGENT_ROWS = (
    "agent_cold_reconcile_",
    "agent_idle_reconcile_",
    "agent_peer_added_",
    "agent_overlay_throughput_",
)


@pytest.fixture
def bench_run(tmp_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "bench",
            "--quick",
            "--only",
            "allocator,failover,throughput,convergence,state,live,footprint,scale"
            + (",agent" if os.geteuid() == 0 else ""),  # the agent's build namespaces
            "--output",
            str(tmp_path / "BENCHMARKS.md"),
            "--json",
            str(tmp_path / "rows.json"),
        ],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        yield proc
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGTERM)  # the runner ends its children by PID on SIGTERM
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.kill(proc.pid, signal.SIGKILL)  # children die with it (PR_SET_PDEATHSIG)
                proc.wait(timeout=30)


@pytest.mark.timeout(420)
def test_quick_benchmarks_complete_with_every_row(
    bench_run: subprocess.Popen[bytes], tmp_path: Path
) -> None:
    output, _ = bench_run.communicate(timeout=380)
    text = output.decode(errors="replace")
    assert bench_run.returncode == 0, text[-4000:]
    rows = json.loads((tmp_path / "rows.json").read_text())
    keys = {row["key"] for row in rows}
    assert keys >= MASTER_ROWS, f"missing rows: {sorted(MASTER_ROWS - keys)}"
    if os.geteuid() == 0:  # the agent's benchmarks build namespaces
        missing = [p for p in AGENT_ROWS if not any(k.startswith(p) for k in keys)]
        assert not missing, f"missing agent rows: {missing}"
    assert not [k for k in keys if k.startswith("error.")], text[-4000:]
    assert all(row["result"] for row in rows)
    # every row names its target, or why it has none; a target gets a verdict
    assert all(row["target"] for row in rows)
    assert all((row["verdict"] == "") == row["target"].startswith("none: ") for row in rows)
    report = (tmp_path / "BENCHMARKS.md").read_text()
    assert "## Results" in report and "Machine:" in report
