"""The main job in CI: ``scripts/run`` as root starts three masters, three agents in namespaces and
a container on each; the printed ping crosses agents; Ctrl-C leaves nothing behind (namespaces,
processes, root-namespace links). Start-up that fails or is interrupted half-way cleans up too."""

from __future__ import annotations

import json
import re
import secrets
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from overlay_demo.hosts import leftover_namespaces
from overlay_demo.leftovers import LOCK_DIR, ProcessRecord
from tests.harness.demo import SCRIPT, DemoRun, command_lines_with, demo_flags
from tests.netns.topology import sh
from tests.waiting import wait_until

pytestmark = pytest.mark.netns

UP_TIMEOUT = 180  # three masters, three agents one after the other, on a loaded 2-core machine
URL_LINE = r"Networking page: (http://\S+/)$"
PING_LINE = r"^\s+(ip netns exec \S+ ping -c \d+ [\d.]+)"
CONTAINER_LINE = r"container (\S+) on agent \d: ([\d.]+) "
MASTERS_LINE = r"^\s+masters: ((?:http://\S+ )+)"


def root_links() -> dict[int, dict[str, Any]]:
    links = json.loads(sh("ip", "-j", "-d", "link", "show").stdout)
    return {link["ifindex"]: link for link in links}


def docker_made(link: dict[str, Any]) -> bool:
    """Links another suite's Docker daemon may make or remove while we run (docker-compose
    networks live in the root namespace): never ones the demo could have made."""
    name, master = link["ifname"], link.get("master", "")
    kind = link.get("linkinfo", {}).get("info_kind")
    return name.startswith(("br-", "docker")) or (
        kind == "veth" and master.startswith(("br-", "docker"))
    )


def changed_links(before: dict[int, dict[str, Any]]) -> list[str]:
    after = root_links()
    added = [after[i] for i in after.keys() - before.keys()]
    removed = [before[i] for i in before.keys() - after.keys()]
    return [f"+{x['ifname']}" for x in added if not docker_made(x)] + [
        f"-{x['ifname']}" for x in removed if not docker_made(x)
    ]


@pytest.fixture
def prefix() -> Iterator[str]:
    name = f"ovd{secrets.token_hex(3)}-"
    try:
        yield name
    finally:
        for ns in leftover_namespaces(name):
            sh("ip", "netns", "del", ns, check=False)
        (LOCK_DIR / f"overlay-demo-{name}lock").unlink(missing_ok=True)


@pytest.fixture
def runs() -> Iterator[list[DemoRun]]:
    started: list[DemoRun] = []
    try:
        yield started
    finally:
        for run in started:
            run.kill()


def assert_nothing_left(run: DemoRun, prefix: str, tmp_path: Path, links: dict[int, Any]) -> None:
    assert leftover_namespaces(prefix) == []
    assert run.seen, "the demo's children were never seen"
    assert run.alive_children() == []
    assert command_lines_with(str(tmp_path)) == []
    assert command_lines_with(prefix) == []
    assert changed_links(links) == []


def test_scripts_run_shows_the_whole_system_and_ctrl_c_removes_it(
    tmp_path: Path, prefix: str, runs: list[DemoRun]
) -> None:
    data = tmp_path / "dev-cluster-data"
    data.mkdir()
    # What a run killed with SIGKILL leaves: a namespace of ours and a recorded process.
    sh("ip", "netns", "add", f"{prefix}a2")
    stale = subprocess.Popen(["sleep", "600"], start_new_session=True)
    try:
        ProcessRecord(data / "demo.pids").add(stale.pid)
        links = root_links()
        run = DemoRun.start([str(SCRIPT), *demo_flags(data, prefix)], tmp_path)
        runs.append(run)
        url = run.wait_line(URL_LINE, UP_TIMEOUT).group(1)
        ping = run.wait_line(PING_LINE, 10).group(1)
        assert stale.wait(10) == -signal.SIGTERM  # the earlier run's process, ended by PID

        done = sh(*ping.split(), check=False)
        assert done.returncode == 0, done.stdout + done.stderr
        assert " 0% packet loss" in done.stdout
        # The three containers, with the addresses CNI gave them, on every master.
        found = (re.search(CONTAINER_LINE, line) for line in run.lines)
        printed = {m.group(1): m.group(2) for m in found if m}
        assert sorted(printed) == [f"{prefix}c{k}" for k in (1, 2, 3)]
        masters = run.wait_line(MASTERS_LINE, 1).group(1).split()
        assert masters[0] == url.rstrip("/")
        for master in masters:
            wait_until(f"the containers on {master}", lambda m=master: _listed(m) == printed)
        assert f"  API token (for writes): {data / 'api-token'}" in run.lines

        assert run.interrupt(signal.SIGINT) == 0, run.output()
    finally:
        if stale.poll() is None:
            stale.kill()
            stale.wait()
    assert "stopped; all its masters, agents, containers and namespaces are gone" in run.lines[-1]
    assert_nothing_left(run, prefix, tmp_path, links)
    assert not (data / "demo.pids").exists() and not (data / "demo").exists()
    assert (data / "replica-1").is_dir()  # the masters' state stays for the next run


def test_start_up_that_fails_half_way_removes_what_it_made(
    tmp_path: Path, prefix: str, runs: list[DemoRun]
) -> None:
    """No agent writes a config for the network asked for: the masters, the underlay and the
    agents are up by then, and all of it goes."""
    links = root_links()
    command = [str(SCRIPT), *demo_flags(tmp_path / "data", prefix), "--network", "nosuch"]
    run = DemoRun.start(command, tmp_path)
    runs.append(run)
    wait_until("the agents' namespaces", lambda: f"{prefix}a3" in leftover_namespaces(prefix), 120)
    run.follow_children()
    assert run.wait(120) == 1
    stderr = run.stderr.read_text()
    assert "start-up failed: agent 1 wrote no CNI config for network 'nosuch'" in stderr
    assert "(it has: dcos.conf" in stderr
    assert "are gone" in run.lines[-1]
    assert_nothing_left(run, prefix, tmp_path, links)


def test_sigterm_during_start_up_removes_what_it_made(
    tmp_path: Path, prefix: str, runs: list[DemoRun]
) -> None:
    links = root_links()
    run = DemoRun.start([str(SCRIPT), *demo_flags(tmp_path / "data", prefix)], tmp_path)
    runs.append(run)

    def first_agent_up() -> bool:
        run.follow_children()
        return any("overlay_agent.cli" in line for line in command_lines_with(prefix))

    wait_until("the first agent process", first_agent_up, 120)
    assert run.interrupt(signal.SIGTERM) == 1
    assert "SIGTERM during start-up" in run.stderr.read_text()
    assert_nothing_left(run, prefix, tmp_path, links)


def _listed(master: str) -> dict[str, str]:
    try:
        answer = httpx.get(f"{master}/overlay-master/containers", timeout=5)
    except httpx.HTTPError:
        return {}
    if answer.status_code != 200:
        return {}
    return {c["id"]: c.get("address") for c in answer.json()["containers"]}
