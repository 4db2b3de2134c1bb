"""Power cuts of every master, on a file system that loses what was not synced (tests.powercut).

Each replica keeps its data dir on its own power-cut mount. Registrations run through all three
replicas; then all three are killed at once, everything they had not synced is dropped, and they
start again. With the default (sync before acknowledge) every acknowledged allocation is still
there, unchanged. With ``--unsafe-no-fsync`` the same test loses them: the file system really can
fail, so the first test is evidence.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.harness.cluster import Cluster
from tests.powercut.mount import PowerCutMount, available
from tests.waiting import wait_until

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(available() is not None, reason=str(available())),
]


@contextlib.contextmanager
def powercut_cluster(
    root: Path, extra_args: list[str]
) -> Iterator[tuple[Cluster, list[PowerCutMount]]]:
    cluster = Cluster(root, extra_args=extra_args)
    mounts = [
        PowerCutMount(root / f"disk-{r.index + 1}", r.data_dir, root / f"fs-{r.index + 1}.log")
        for r in cluster.replicas
    ]
    try:
        for fs in mounts:
            fs.mount()
        cluster.start_all()
        yield cluster, mounts
    finally:
        cluster.stop_all()
        for fs in mounts:
            fs.unmount()


def register_until(
    cluster: Cluster, stop: threading.Event, acked: dict[str, dict[str, object]]
) -> None:
    """Register new agents round-robin over the replicas; keep every acknowledged answer."""
    n = 0
    while not stop.is_set() and n < 5000:
        replica = cluster.replicas[n % 3]
        ip = f"10.60.{n // 250}.{n % 250 + 1}"
        n += 1
        try:
            answer = cluster.register(replica, ip, timeout=3)
        except httpx.HTTPError:
            continue
        if answer.status_code == 200:
            acked[ip] = answer.json()


def power_cut_all(cluster: Cluster, mounts: list[PowerCutMount]) -> None:
    for replica in cluster.replicas:  # kill -9 all three, then drop what they had not synced
        cluster.kill(replica)
    for fs in mounts:
        fs.cut()
    for replica in cluster.replicas:
        cluster.start(replica)


def lost_after_power_cut(cluster: Cluster, mounts: list[PowerCutMount]) -> tuple[int, list[str]]:
    acked: dict[str, dict[str, object]] = {}
    stop = threading.Event()
    writer = threading.Thread(target=register_until, args=(cluster, stop, acked))
    writer.start()
    try:
        wait_until("60 acknowledged registrations", lambda: len(acked) >= 60, 60)
        power_cut_all(cluster, mounts)  # while registrations are still in flight
    finally:
        stop.set()
        writer.join()
    assert all(fs.cuts == 1 for fs in mounts)
    cluster.wait_ready(timeout=60)
    state = cluster.state(cluster.replicas[0]).json()
    agents = {a["ip"]: a for a in state["agents"]}
    lost = [ip for ip in acked if ip not in agents]
    changed = [ip for ip in acked if ip in agents and agents[ip] != acked[ip]]
    return len(acked), lost + changed


def test_power_cut_of_all_three_masters_loses_no_acknowledged_allocation(tmp_path: Path) -> None:
    with powercut_cluster(tmp_path, []) as (cluster, mounts):
        acked, bad = lost_after_power_cut(cluster, mounts)
        assert acked >= 60
        assert bad == [], f"{len(bad)} of {acked} acknowledged allocations lost or changed"
        # and the cluster still works
        assert cluster.register(cluster.replicas[1], "10.61.0.1").status_code == 200


def test_without_fsync_a_power_cut_loses_acknowledged_allocations(tmp_path: Path) -> None:
    with powercut_cluster(tmp_path, ["--unsafe-no-fsync"]) as (cluster, mounts):
        acked, bad = lost_after_power_cut(cluster, mounts)
        assert acked >= 60
        assert len(bad) > 0, "the file system did not lose unsynced writes"
