"""Live networks on a real three-replica cluster: networks added during a registration storm
while the leader is killed, then a full restart. Every acknowledged change is kept, every agent
holds exactly one block of every enabled network, and no block is handed out twice."""

from __future__ import annotations

import ipaddress
import signal
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from overlay_wire.contract import NETWORKS_PATH
from tests.harness.cluster import Cluster, running_cluster
from tests.integration.test_master_cluster import register_with_retry
from tests.waiting import wait_until

pytestmark = pytest.mark.integration

NETWORKS = [
    {"name": f"net{i}", "subnet": f"10.{100 + i}.0.0/16", "prefix": 24} for i in range(1, 7)
]


def add_with_retry(cluster: Cluster, body: dict[str, Any], deadline: float, start: int) -> str:
    """Add a network as an operator's tool would: retry unknown outcomes (503, no answer).

    A retry of an add that was applied meets ``network_exists``: the add is then acknowledged."""
    answer = cluster.write_until_answered(
        "POST", NETWORKS_PATH, body, deadline, start, already_done="network_exists"
    )
    return "added" if answer.status_code == 201 else "existed"


def check_blocks(state: dict[str, Any]) -> None:
    """Every agent holds one block of every network; blocks are inside their network, unique."""
    spaces = {o["name"]: ipaddress.ip_network(o["subnet"]) for o in state["network"]["overlays"]}
    seen: set[str] = set()
    for agent in state["agents"]:
        names = [o["info"]["name"] for o in agent["overlays"]]
        assert sorted(names) == sorted(spaces), (agent["ip"], names)
        for overlay in agent["overlays"]:
            block = overlay["subnet"]
            assert ipaddress.ip_network(block).subnet_of(spaces[overlay["info"]["name"]])  # type: ignore[arg-type]
            assert block not in seen, f"{block} handed out twice"
            seen.add(block)


def test_networks_added_during_a_storm_and_a_leader_kill_survive_a_full_restart(
    tmp_path: Path,
) -> None:
    with running_cluster(tmp_path / "c") as cluster:
        deadline = time.monotonic() + 90
        ips = [f"10.50.{i // 200}.{i % 200 + 1}" for i in range(120)]
        registered: dict[str, dict[str, Any]] = {}
        added: dict[str, str] = {}
        lock = threading.Lock()

        def register(n: int, ip: str) -> None:
            record = register_with_retry(cluster, ip, deadline, start=n)
            with lock:
                registered[ip] = record

        def add(n: int, body: dict[str, Any]) -> None:
            outcome = add_with_retry(cluster, body, deadline, start=n)
            with lock:
                added[body["name"]] = outcome

        storm = [threading.Thread(target=register, args=(n, ip)) for n, ip in enumerate(ips)]
        adds = [threading.Thread(target=add, args=(n, b)) for n, b in enumerate(NETWORKS)]
        leader = cluster.leader()
        for t in storm[:60] + adds[:3]:
            t.start()
        wait_until("the storm running", lambda: len(added) >= 1 and len(registered) >= 20, 30)
        cluster.kill(leader)  # mid-add: the other adds and registrations are in flight
        for t in storm[60:] + adds[3:]:
            t.start()
        for t in storm + adds:
            t.join(timeout=120)
        assert len(registered) == len(ips) and len(added) == len(NETWORKS)

        survivors = [r for r in cluster.replicas if r.alive]
        state = cluster.state(survivors[0]).json()
        assert cluster.state(survivors[1]).json() == state
        names = [o["name"] for o in state["network"]["overlays"]]
        assert names[0] == "dcos" and sorted(names[1:]) == sorted(b["name"] for b in NETWORKS)
        assert sorted(a["ip"] for a in state["agents"]) == sorted(ips)
        check_blocks(state)
        by_ip = {a["ip"]: a for a in state["agents"]}
        for ip, record in registered.items():  # what each registration answered is still held
            held = {o["info"]["name"]: o for o in by_ip[ip]["overlays"]}
            for overlay in record["overlays"]:
                assert held[overlay["info"]["name"]] == overlay

        # a full restart: every replica killed, all three started again
        cluster.start(leader)
        cluster.wait_ready([leader])
        for replica in cluster.replicas:
            cluster.kill(replica, signal.SIGKILL)
        for replica in cluster.replicas:
            cluster.start(replica)
        cluster.wait_ready()
        after = [cluster.state(r).json() for r in cluster.replicas]
        assert after[0] == after[1] == after[2] == state
