"""Bounded chaos runs with fixed seeds (about a minute each): three masters in network
namespaces, 250 simulated agents, faults, heal, and the full checker (tests.chaos.run).

The two runs split the fault kinds between them so that each kind is exercised every time
(power loss in both, a power cut of two masters in one and of all three in the other). A failing run keeps its directory (history, faults, report, replica logs)
under pytest's tmp_path and prints the figure line and the violations.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.harness.cluster import ROOT

pytestmark = pytest.mark.chaos

RUNS = {
    11: ("kill_leader", "kill_all", "partition_leader", "power_loss", "power_cut_all"),
    12: ("kill_follower", "pause_leader", "oneway_partition", "power_loss", "power_cut_two"),
}


@pytest.mark.parametrize("seed", sorted(RUNS))
def test_chaos_run_finds_no_violation(seed: int, tmp_path: Path) -> None:
    out = tmp_path / "run"
    kinds = RUNS[seed]
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "tests.chaos",
            "--seed",
            str(seed),
            "--duration",
            "50s",
            "--faults",
            ",".join(kinds),
            "--out",
            str(out),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=280,
        check=False,
    )
    print(done.stdout)
    assert done.returncode == 0, done.stdout + done.stderr[-3000:]
    report = json.loads((out / "report.json").read_text())
    assert report["violations"] == []
    assert report["ok"] > 500  # the workload really ran
    assert report["network_changes"] >= 2  # and so did the network operator
    seen = {json.loads(line)["kind"] for line in (out / "faults.jsonl").read_text().splitlines()}
    assert seen == set(kinds), f"fault kinds not exercised: {set(kinds) - seen}"
