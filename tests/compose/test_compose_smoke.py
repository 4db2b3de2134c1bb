"""The docker-compose dev cluster, end to end (scripts/compose-smoke does the work).

It builds the image, brings up three masters and three agents, waits for STATUS_OK, pings between
test containers on different agents over VXLAN, kills the leading master, registers a new agent,
pings again, and tears everything down (also on failure).
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.compose
ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to run a Docker engine")
# a fresh clone first debootstraps the base image: pytest's 300 s default is too short then
@pytest.mark.timeout(900)
def test_compose_cluster_pings_across_agents_and_survives_losing_the_leader() -> None:
    env = {k: v for k, v in os.environ.items() if k != "DOCKER_HOST"}  # always a private dockerd
    out = subprocess.run(
        [str(ROOT / "scripts" / "compose-smoke")],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-4000:]
    assert "pings c4" in out.stdout and "passed in" in out.stdout
