"""The offline commands, run as real processes: check-config and plan."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "overlay_master.cli", *args],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_check_config_valid_prints_capacity(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(
        "dcos_overlay_network:\n  vtep_subnet: 44.128.0.0/20\n  vtep_mac_oui: 70:B3:D5:00:00:00\n"
        "  overlays:\n    - name: dcos\n      subnet: 9.0.0.0/8\n      prefix: 26\n"
    )
    out = run("check-config", str(path))
    assert out.returncode == 0, out.stderr
    assert "dcos: 9.0.0.0/8 in /26 blocks: 4094 agents fit" in out.stdout


def test_check_config_invalid_lists_every_problem_and_exits_2(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(
        "vtep_subnet: 44.128.0.0/7\nvtep_mac_oui: 70:B3:D5:00:00:01\n"
        "overlays:\n  - name: host\n    subnet: 9.0.0.1/8\n    prefix: 26\n"
    )
    out = run("check-config", str(path))
    assert out.returncode == 2
    assert "4 problem(s)" in out.stderr
    for fragment in (
        "vtep_subnet: '44.128.0.0/7'",
        "vtep_mac_oui",
        "reserved network name",
        "host bits",
    ):
        assert fragment in out.stderr


def test_plan_on_the_default_config() -> None:
    out = run("plan", "--agents", "172.17.0.2,172.17.0.3", "--no-bridges", "172.17.0.2")
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert [a["ip"] for a in doc["agents"]] == ["172.17.0.2", "172.17.0.3"]
    assert "mesos_bridge" not in doc["agents"][0]["overlays"][0]
    assert doc["agents"][1]["overlays"][0]["mesos_bridge"] == {
        "ip": "9.0.0.64/27",
        "name": "m-dcos",
    }
    assert doc["network"]["vtep_subnet"] == "44.128.0.0/20"


def test_plan_reports_exhaustion(tmp_path: Path) -> None:
    path = tmp_path / "tiny.yaml"
    path.write_text(
        "vtep_subnet: 44.128.0.0/30\nvtep_mac_oui: 70:B3:D5:00:00:00\noverlays:\n  - {name: o, subnet: 10.1.0.0/24, prefix: 26}\n"
    )
    out = run("plan", "--config", str(path), "--agents", "10.0.0.1,10.0.0.2,10.0.0.3")
    assert out.returncode == 2
    assert "10.0.0.3: vtep_exhausted" in out.stderr
    assert len(json.loads(out.stdout)["agents"]) == 2
