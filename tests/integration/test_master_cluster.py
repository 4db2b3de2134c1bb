"""Three real overlay-master processes on 127.0.0.1: replication, failover, restart, guard, auth."""

from __future__ import annotations

import ipaddress
import json
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from overlay_wire.contract import AGENTS_PATH
from tests.harness.cluster import ROOT, Cluster, Replica, running_cluster
from tests.waiting import wait_until

pytestmark = pytest.mark.integration


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    with running_cluster(tmp_path / "cluster") as c:
        yield c


def register_with_retry(
    cluster: Cluster, ip: str, deadline: float, start: int = 0
) -> dict[str, Any]:
    """What a real agent does: try replicas in turn, retrying on 503 and connection errors."""
    body = {"ip": ip, "mesos_bridge": True, "docker_bridge": True}
    answer = cluster.write_until_answered("POST", AGENTS_PATH, body, deadline, start)
    assert answer.status_code == 200, answer.text
    record: dict[str, Any] = answer.json()
    return record


def check_config(path: Path, url: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "overlay_master.cli", "check-config", str(path)]
    return subprocess.run(
        [*command, "--against", url],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        check=False,
    )


def commit_index(replica: Replica) -> int:
    metrics = httpx.get(f"{replica.url}/metrics", timeout=10).text
    line = next(
        row for row in metrics.splitlines() if row.startswith("overlay_master_raft_commit_index ")
    )
    return int(float(line.split()[1]))


def check_unique(state: dict[str, Any]) -> None:
    vteps, macs, subnets = set(), set(), set()
    for agent in state["agents"]:
        for overlay in agent["overlays"]:
            vxlan = overlay["backend"]["vxlan"]
            subnets.add(overlay["subnet"])
        assert vxlan["vtep_ip"] not in vteps and vxlan["vtep_mac"] not in macs
        vteps.add(vxlan["vtep_ip"])
        macs.add(vxlan["vtep_mac"])
    assert len(subnets) == len(state["agents"])


def test_concurrent_registrations_through_all_replicas_give_identical_dcos_state(
    cluster: Cluster,
) -> None:
    ips = [f"10.1.{i // 100}.{i % 100 + 1}" for i in range(90)]
    with ThreadPoolExecutor(16) as pool:
        answers = list(
            pool.map(lambda p: cluster.register(cluster.replicas[p[0] % 3], p[1]), enumerate(ips))
        )
    assert all(a.status_code == 200 for a in answers), [
        a.text for a in answers if a.status_code != 200
    ]
    bodies = [cluster.state(r).content for r in cluster.replicas]
    assert bodies[0] == bodies[1] == bodies[2]
    state = json.loads(bodies[0])
    assert sorted(a["ip"] for a in state["agents"]) == sorted(ips)
    check_unique(state)
    # the allocation is exactly DC/OS's lowest-first order in registration (log) order
    for n, agent in enumerate(state["agents"]):
        overlay = agent["overlays"][0]
        assert (
            overlay["backend"]["vxlan"]["vtep_ip"]
            == f"{ipaddress.IPv4Address('44.128.0.1') + n}/20"
        )
        assert overlay["subnet"] == f"{ipaddress.IPv4Address('9.0.0.0') + 64 * n}/26"
    # each answer was that agent's committed record
    by_ip = {a["ip"]: a for a in state["agents"]}
    for answer in answers:
        assert answer.json() == by_ip[answer.json()["ip"]]
    # re-registering is idempotent on any replica
    again = cluster.register(cluster.replicas[2], ips[0])
    assert again.status_code == 200 and again.json() == by_ip[ips[0]]


def test_leader_kill_mid_registration_keeps_every_acknowledged_allocation(cluster: Cluster) -> None:
    leader = cluster.leader()
    acked: dict[str, dict[str, Any]] = {}
    lock = threading.Lock()
    deadline = time.monotonic() + 60
    ips = [f"10.2.0.{i}" for i in range(1, 61)]

    def worker(ip: str, n: int) -> None:
        record = register_with_retry(cluster, ip, deadline, start=n)
        with lock:
            acked[ip] = record

    threads = [threading.Thread(target=worker, args=(ip, n)) for n, ip in enumerate(ips)]
    for t in threads[:30]:
        t.start()
    wait_until("some registrations acknowledged", lambda: len(acked) >= 10, 20)
    cluster.kill(leader)
    for t in threads[30:]:
        t.start()
    for t in threads:
        t.join(timeout=90)
    assert len(acked) == len(ips)
    survivors = [r for r in cluster.replicas if r.alive]
    states = [cluster.state(r).json() for r in survivors]
    assert states[0] == states[1]
    by_ip = {a["ip"]: a for a in states[0]["agents"]}
    assert sorted(by_ip) == sorted(ips)
    for ip, record in acked.items():
        assert by_ip[ip] == record  # exactly the acknowledged allocation
    check_unique(states[0])
    # the killed replica comes back and converges to the same state
    cluster.start(leader)
    cluster.wait_ready([leader])
    assert cluster.state(leader).json() == states[0]


def test_kill_all_three_and_restart_gives_identical_state(cluster: Cluster) -> None:
    for i in range(25):
        assert cluster.register(cluster.replicas[i % 3], f"10.3.0.{i + 1}").status_code == 200
    httpx.post(
        f"{cluster.replicas[0].url}/overlay-master/agents/delete",
        json={"agents": ["10.3.0.5"]},
        headers=cluster.auth,
        timeout=10,
    ).raise_for_status()
    before = cluster.state(cluster.replicas[1]).content
    for r in cluster.replicas:
        cluster.kill(r)
    cluster.start_all()
    for r in cluster.replicas:
        assert cluster.state(r).content == before
    # and allocation continues where it left off (the freed slot is reused last, not first)
    nxt = cluster.register(cluster.replicas[0], "10.3.1.1").json()
    assert nxt["overlays"][0]["backend"]["vxlan"]["vtep_ip"] == "44.128.0.26/20"


def test_a_replica_started_with_a_different_config_keeps_the_logs_networks(
    tmp_path: Path,
) -> None:
    """The log is the one source of truth: a restart with a file that drops one network and
    resizes another changes nothing in the cluster and says how file and log differ."""
    two = (
        "vtep_subnet: 44.128.0.0/20\nvtep_mac_oui: 70:B3:D5:00:00:00\noverlays:\n"
        "  - {name: dcos, subnet: 9.0.0.0/8, prefix: 26}\n  - {name: extra, subnet: 10.0.0.0/16, prefix: 24}\n"
    )
    with running_cluster(tmp_path / "c", config_text=two) as cluster:
        assert cluster.register(cluster.replicas[0], "10.4.0.1").status_code == 200
        victim = cluster.replicas[2]
        wait_until(
            "replicated", lambda: cluster.state(victim, consistent=False).json()["agents"], 10
        )
        cluster.kill(victim, signal.SIGTERM)
        healthy = cluster.replicas[0]
        # a write settles any election the kill caused (a new leader appends a no-op entry)
        register_with_retry(cluster, "10.4.0.9", time.monotonic() + 30)
        log_length = commit_index(healthy)
        before = cluster.state(healthy, consistent=False).content
        changed = tmp_path / "changed.yaml"
        changed.write_text(
            two.split("  - {name: extra", maxsplit=1)[0].replace("prefix: 26", "prefix: 24")
        )
        cluster.start(victim, config=changed)
        cluster.wait_ready([victim])
        ready = httpx.get(f"{victim.url}/readyz", timeout=5).json()
        assert ready["config_drift"] == [
            "network extra: in the log, not in the file",
            "network dcos: prefix is 26 in the log, 24 in the file",
        ]
        assert "config file differs from the log" in cluster.log_tail(victim, 200)
        # the restarted replica proposed nothing and serves the log's networks
        assert commit_index(healthy) == log_length
        assert cluster.state(healthy, consistent=False).content == before
        assert cluster.state(victim).content == before
        check = check_config(changed, victim.url)
        assert check.returncode == 1, check.stderr
        assert "network extra: in the log, not in the file" in check.stdout
        same = check_config(cluster.config, victim.url)
        assert same.returncode == 0 and "matches the log" in same.stdout, same


def test_sigstopped_old_leader_never_serves_stale_state(cluster: Cluster) -> None:
    old = cluster.leader()
    others = [r for r in cluster.replicas if r is not old]
    cluster.kill(old, signal.SIGSTOP)
    try:
        record = register_with_retry(
            cluster, "10.5.0.1", time.monotonic() + 30, start=others[0].index
        )
    finally:
        cluster.kill(old, signal.SIGCONT)
    # right after waking up it still believes it leads: it must answer fresh data or 503
    deadline = time.monotonic() + 5
    answers = []
    while time.monotonic() < deadline:
        response = cluster.state(old, timeout=6)
        answers.append(response.status_code)
        if response.status_code == 200:
            assert record in response.json()["agents"]
        else:
            assert response.status_code == 503 and response.headers["Retry-After"]
    assert 200 in answers


def test_token_required_for_writes_and_nothing_changes_without_it(cluster: Cluster) -> None:
    url = f"{cluster.replicas[0].url}/overlay-master/agents"
    before = cluster.state(cluster.replicas[0]).content
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": cluster.token}):
        response = httpx.post(url, json={"ip": "10.6.0.1"}, headers=headers, timeout=10)
        assert response.status_code == 401 and response.json()["error"] == "unauthorized"
    delete = httpx.post(f"{url}/delete", json={"agents": ["10.6.0.1"]}, timeout=10)
    assert delete.status_code == 401
    assert cluster.state(cluster.replicas[0]).content == before


def test_raft_peer_with_wrong_password_cannot_join_or_change_state(tmp_path: Path) -> None:
    cluster = Cluster(tmp_path / "c")
    wrong = tmp_path / "wrong-password"
    wrong.write_text("not-the-password")
    try:
        cluster.start(cluster.replicas[0])
        cluster.start(cluster.replicas[1])
        cluster.start(cluster.replicas[2], password=wrong)
        cluster.wait_ready(cluster.replicas[:2])
        assert cluster.register(cluster.replicas[0], "10.7.0.1").status_code == 200
        intruder = cluster.replicas[2]
        answer = cluster.register(intruder, "10.7.0.2", timeout=15)
        assert answer.status_code == 503
        assert httpx.get(f"{intruder.url}/readyz", timeout=5).status_code == 503
        good = cluster.state(cluster.replicas[1]).json()
        assert [a["ip"] for a in good["agents"]] == ["10.7.0.1"]
    finally:
        cluster.stop_all()


def test_watch_is_woken_by_a_registration_on_another_replica(cluster: Cluster) -> None:
    first = cluster.register(cluster.replicas[0], "10.8.0.1")
    revision = int(first.headers["X-Overlay-Revision"])
    result: dict[str, Any] = {}

    def watch() -> None:
        url = f"{cluster.replicas[1].url}/overlay-master/watch"
        result["answer"] = httpx.get(
            url, params={"since": revision, "timeout": 60}, timeout=70
        ).json()

    watcher = threading.Thread(target=watch)
    watcher.start()
    time.sleep(0.3)  # let the watch park (if it answers early, the assertions below still hold)
    second = cluster.register(cluster.replicas[2], "10.8.0.2")
    watcher.join(timeout=30)
    answer = result["answer"]
    assert answer["full"] is False and answer["revision"] == int(
        second.headers["X-Overlay-Revision"]
    )
    assert answer["agents"] == [second.json()] and answer["deleted"] == []
    # a fresh watcher gets the whole state; a deletion shows up in the delta
    full = httpx.get(
        f"{cluster.replicas[0].url}/overlay-master/watch", params={"since": 0}, timeout=10
    ).json()
    assert full["full"] is True and len(full["agents"]) == 2
    httpx.post(
        f"{cluster.replicas[0].url}/overlay-master/agents/delete",
        json={"agents": ["10.8.0.1"]},
        headers=cluster.auth,
        timeout=10,
    ).raise_for_status()
    delta = httpx.get(
        f"{cluster.replicas[2].url}/overlay-master/watch",
        params={"since": full["revision"], "timeout": 10},
        timeout=20,
    ).json()
    assert delta["deleted"] == ["10.8.0.1"] and delta["agents"] == []


def test_errors_exhaustion_bad_input_and_status(tmp_path: Path) -> None:
    tiny = "vtep_subnet: 44.128.0.0/30\nvtep_mac_oui: 70:B3:D5:00:00:00\noverlays:\n  - {name: dcos, subnet: 9.0.0.0/8, prefix: 26}\n"
    with running_cluster(tmp_path / "c", config_text=tiny) as cluster:
        r0 = cluster.replicas[0]
        assert cluster.register(r0, "10.9.0.1").status_code == 200
        assert cluster.register(r0, "10.9.0.2").status_code == 200
        full = cluster.register(r0, "10.9.0.3")
        assert full.status_code == 409 and full.json()["error"] == "vtep_exhausted"
        for bad in (
            {"ip": "10.9.0.300"},
            {"ip": "fd00::1"},
            {"ip": 5},
            {},
            {"ip": "10.9.0.4", "extra": 1},
        ):
            answer = httpx.post(
                f"{r0.url}/overlay-master/agents", json=bad, headers=cluster.auth, timeout=10
            )
            assert answer.status_code == 422, (bad, answer.text)
            assert answer.json()["error"] in ("invalid_ip", "invalid_request")
        status_url = f"{r0.url}/overlay-master/agents/10.9.0.1/status"
        bad_status = httpx.put(
            status_url,
            json={"overlays": [{"name": "nope", "status": "STATUS_OK"}]},
            headers=cluster.auth,
            timeout=10,
        )
        assert bad_status.status_code == 409 and bad_status.json()["error"] == "unknown_overlay"
        ok = httpx.put(
            status_url,
            json={"overlays": [{"name": "dcos", "status": "STATUS_OK"}]},
            headers=cluster.auth,
            timeout=10,
        )
        assert ok.status_code == 200
        shown = cluster.state(cluster.replicas[2]).json()["agents"][0]["overlays"][0]
        assert shown["state"] == {"status": "STATUS_OK"}
        assert httpx.get(f"{r0.url}/overlay-master/agents/10.9.9.9", timeout=10).status_code == 404
        metrics = httpx.get(f"{r0.url}/metrics", timeout=10).text
        assert 'overlay_master_vteps_free{family="ipv4"} 0.0' in metrics
        assert 'overlay_master_blocks_used{family="ipv4",overlay="dcos"} 2.0' in metrics


def test_refuses_to_start_without_password_and_on_a_taken_port(tmp_path: Path) -> None:
    cluster = Cluster(tmp_path / "c")
    r = cluster.replicas[0]
    command = [
        c
        for c in cluster.command(r)
        if c not in ("--raft-password-file", str(cluster.root / "password"))
    ]
    out = subprocess.run(command, capture_output=True, text=True, timeout=60, cwd=ROOT, check=False)
    assert (
        out.returncode == 2
        and "--raft-password-file" in out.stderr
        and "--insecure-dev" in out.stderr
    )
    import socket

    with socket.socket() as taken:
        host, port = r.http.split(":")
        taken.bind((host, int(port)))
        taken.listen()
        out = subprocess.run(
            cluster.command(r), capture_output=True, text=True, timeout=60, cwd=ROOT, check=False
        )
    assert out.returncode == 1 and f"cannot bind the HTTP address {r.http}" in out.stderr


def raft_term(replica: Replica) -> int:
    metrics = httpx.get(f"{replica.url}/metrics", timeout=10).text
    line = next(row for row in metrics.splitlines() if row.startswith("overlay_master_raft_term "))
    return int(float(line.split()[1]))


def test_restarted_followers_never_change_the_leaders_term(cluster: Cluster) -> None:
    """Pre-vote: a replica that starts (after kill -9, with a log that fell behind) waits for the
    leader instead of starting an election that would depose it."""
    leader = cluster.leader()
    term = raft_term(leader)
    for round_ in range(6):
        follower = [r for r in cluster.replicas if r is not leader][round_ % 2]
        cluster.kill(follower)
        for i in range(5):  # the restarted follower's log is behind
            assert cluster.register(leader, f"10.8.{round_}.{i + 1}").status_code == 200
        cluster.start(follower)
        cluster.wait_ready([follower])
        assert cluster.register(follower, f"10.8.{round_}.100").status_code == 200
        assert [raft_term(r) for r in cluster.replicas] == [term] * 3
        assert cluster.leader() is leader
