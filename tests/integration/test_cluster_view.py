"""``GET /overlay-master/cluster`` on a real three-replica cluster: every replica, its role and
health, from any replica; a stopped replica is shown unreachable, not waited for."""

from __future__ import annotations

import signal
from pathlib import Path

import httpx
import pytest

from overlay_wire.contract import CLUSTER_PATH
from tests.harness.cluster import running_cluster
from tests.waiting import wait_until

pytestmark = pytest.mark.integration


def test_every_replica_sees_every_replica(tmp_path: Path) -> None:
    with running_cluster(tmp_path / "c") as cluster:
        urls = {r.raft: r.url for r in cluster.replicas}

        def view(index: int) -> dict[str, object]:
            answer = httpx.get(f"{cluster.replicas[index].url}{CLUSTER_PATH}", timeout=10)
            assert answer.status_code == 200
            doc: dict[str, object] = answer.json()
            return doc

        def all_announced() -> bool:
            replicas = view(0)["replicas"]
            return isinstance(replicas, list) and all("http" in r for r in replicas)

        wait_until("every replica announced its URL", all_announced, 20)
        for index, replica in enumerate(cluster.replicas):
            doc = view(index)
            assert doc["self"] == replica.raft
            replicas = {r["raft"]: r for r in doc["replicas"]}  # type: ignore[union-attr]
            assert set(replicas) == set(urls)
            assert {raft: r["http"] for raft, r in replicas.items()} == urls
            assert all(r["reachable"] and r["ready"] for r in replicas.values())
            assert [r["role"] for r in replicas.values()].count("leader") == 1
            assert replicas[doc["leader"]]["role"] == "leader"  # type: ignore[index]
            assert replicas[replica.raft]["self"] is True
        stopped = cluster.replicas[2]
        cluster.kill(stopped, signal.SIGKILL)
        seen = {r["raft"]: r for r in view(0)["replicas"]}  # type: ignore[union-attr]
        assert seen[stopped.raft]["reachable"] is False and "role" not in seen[stopped.raft]
        # a restart with the same URL writes nothing new to the log
        revision = view(0)["revision"]
        cluster.start(stopped)
        cluster.wait_ready([stopped])
        assert view(2)["revision"] == revision
