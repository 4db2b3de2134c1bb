"""The main job without agents (``--masters-only``, or what a non-root user gets): three real
replicas, the page URL and why there are no agents printed, Ctrl-C ends every replica. And the
PID record that lets a run end exactly the processes a crashed run left."""

from __future__ import annotations

import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from overlay_demo.leftovers import ProcessRecord, start_time
from tests.harness.demo import SCRIPT, DemoRun, command_lines_with, demo_flags
from tests.waiting import wait_until

pytestmark = pytest.mark.integration


@pytest.fixture
def sleepers() -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    try:
        yield started
    finally:
        for proc in started:
            if proc.poll() is None:
                proc.kill()
            proc.wait()


def test_masters_only_prints_the_url_and_why_and_ctrl_c_stops_every_replica(
    tmp_path: Path,
) -> None:
    data = tmp_path / "dev-cluster-data"
    run = DemoRun.start([str(SCRIPT), *demo_flags(data, prefix=None)], tmp_path)
    try:
        url = run.wait_line(r"Networking page: (http://\S+/)$", 120).group(1)
        assert run.lines[0] == "overlay demo: the masters only (--masters-only)"
        state = httpx.get(f"{url}overlay-master/state", timeout=10)
        assert state.status_code == 200 and state.json()["agents"] == []
        assert len(run.seen) >= 3
        assert len(ProcessRecord(data / "demo.pids").entries()) == 3
        # A second run on the same data dir refuses to start: the first one's are no leftovers.
        second = subprocess.run(
            [str(SCRIPT), *demo_flags(data, prefix=None)], capture_output=True, text=True,
            timeout=120, check=False,
        )  # fmt: skip
        assert second.returncode == 1
        assert f"another overlay-demo (PID {run.proc.pid}) is running with data dir" in (
            second.stderr
        )
        assert len(ProcessRecord(data / "demo.pids").entries()) == 3
        assert httpx.get(f"{url}overlay-master/state", timeout=10).status_code == 200
        assert run.interrupt(signal.SIGINT) == 0, run.output()
    finally:
        run.kill()
    assert run.lines[-1] == "overlay-demo: stopped; all its masters are gone"
    assert run.alive_children() == []
    assert command_lines_with(str(tmp_path)) == []
    assert not (data / "demo.pids").exists()


def test_leftovers_are_ended_by_pid_and_only_if_the_pid_is_still_theirs(
    tmp_path: Path, sleepers: list[subprocess.Popen[bytes]]
) -> None:
    polite = subprocess.Popen(["sleep", "600"], start_new_session=True)
    stubborn = subprocess.Popen(["sh", "-c", "trap '' TERM; exec sleep 600"])
    reused = subprocess.Popen(["sleep", "600"])  # stands for a PID now given to someone else
    sleepers += [polite, stubborn, reused]
    # SIGTERM is ignored only once the shell has set its trap and become ``sleep``.
    comm = Path(f"/proc/{stubborn.pid}/comm")
    wait_until("the stubborn sleeper", lambda: comm.read_text().strip() == "sleep", 10)
    record = ProcessRecord(tmp_path / "demo.pids")
    record.add(polite.pid)
    record.add(stubborn.pid)
    started = start_time(reused.pid)
    assert started is not None
    with record.path.open("a") as f:
        f.write(f"{reused.pid} {started + 1}\nnot a record line\n")

    ended = record.end_leftovers(timeout=0.5)

    assert sorted(ended) == sorted([polite.pid, stubborn.pid])
    assert polite.wait(5) == -signal.SIGTERM
    assert stubborn.wait(5) == -signal.SIGKILL  # SIGTERM ignored: killed at the deadline
    assert reused.poll() is None
    assert not record.path.exists()
