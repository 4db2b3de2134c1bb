"""Reconciler life cycle on real kernels: departed agents, drift repair, zero-write passes,
restart adoption, overlays going away."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests import statedoc
from tests.netns.harness import (
    LocalAgent,
    cluster,
    delete_fdb_by_hand,
    expected_peer_objects,
    fdb,
    local_agent,
    local_agents,
    neighbours,
    routes,
)
from tests.netns.topology import Bed, add_container, ipj, ping_check, sh
from tests.waiting import wait_until

pytestmark = pytest.mark.netns


@pytest.fixture
def trio(bed: Bed) -> Iterator[list[LocalAgent]]:
    with local_agents(bed) as agents:
        for a in agents:
            assert a.reconcile(cluster(bed)).converged
        yield agents


def test_deleted_agent_loses_route_neighbour_and_fdb_everywhere(
    bed: Bed, trio: list[LocalAgent]
) -> None:
    without_3 = cluster(bed, (1, 2))
    for a in trio[:2]:
        outcome = a.reconcile(without_3)
        assert outcome.converged
        assert outcome.operations == 3  # route, neighbour, FDB of agent 3
        assert (routes(a.ns), neighbours(a.ns), fdb(a.ns)) == expected_peer_objects(
            bed, a.k, (1, 2)
        )


def test_drift_is_repaired_without_recreating_the_vtep(bed: Bed, trio: list[LocalAgent]) -> None:
    a1 = trio[0]
    (before,) = ipj(a1.ns, "link", "show", "vtep1024")
    sh("ip", "-n", a1.ns, "route", "del", "9.0.0.128/26")
    sh("ip", "-n", a1.ns, "neigh", "del", "44.128.0.3", "dev", "vtep1024")
    delete_fdb_by_hand(a1.ns, "70:b3:d5:80:00:03", bed.agent_ip(3))
    sh("ip", "-n", a1.ns, "link", "set", "vtep1024", "mtu", "1400")
    sh("ip", "-n", a1.ns, "addr", "flush", "dev", "m-dcos")
    sh(
        "ip", "-n", a1.ns, "route", "add", "9.0.1.0/26", "via", "44.128.0.2", "proto", "211"
    )  # stray of ours
    assert a1.reconcile(cluster(bed)).converged
    (after,) = ipj(a1.ns, "link", "show", "vtep1024")
    assert (after["ifindex"], after["mtu"]) == (before["ifindex"], 1450)
    assert (routes(a1.ns), neighbours(a1.ns), fdb(a1.ns)) == expected_peer_objects(
        bed, 1, (1, 2, 3)
    )
    (m,) = ipj(a1.ns, "-4", "addr", "show", "m-dcos")
    assert [x["local"] for x in m["addr_info"]] == ["9.0.0.1"]


def test_pass_without_change_writes_nothing(bed: Bed, trio: list[LocalAgent]) -> None:
    a1 = trio[0]
    log = bed.root / "monitor.log"
    monitor = bed.start("ip", "-n", a1.ns, "monitor", "all", log=log)
    marker = "198.51.100.0/24"

    def primed() -> bool:
        """True once the monitor printed our marker route being added (it may start late)."""
        seen = [line for line in log.read_text().splitlines() if marker in line]
        if seen and not seen[-1].startswith("[ROUTE]Deleted") and "Deleted" not in seen[-1]:
            return True
        sh("ip", "-n", a1.ns, "route", "del", marker, "dev", "lo", check=False)
        sh("ip", "-n", a1.ns, "route", "add", marker, "dev", "lo")
        return False

    # test-made marker changes bracket the pass: whatever the monitor prints between them is ours
    wait_until("the monitor to see the first marker", primed, every=0.1)
    start = len(log.read_text().splitlines())
    outcome = a1.reconcile(cluster(bed))
    sh("ip", "-n", a1.ns, "route", "del", marker, "dev", "lo")
    wait_until(
        "the monitor to see the second marker",
        lambda: f"Deleted {marker}" in "".join(log.read_text().splitlines()[start:]),
    )
    bed.stop(monitor)
    lines = log.read_text().splitlines()[start:]
    assert len(lines) == 1 and f"Deleted {marker}" in lines[0], lines
    assert (outcome.operations, outcome.writes, outcome.converged) == (0, 0, True)


def test_restart_adopts_everything_with_zero_writes(bed: Bed, trio: list[LocalAgent]) -> None:
    c1 = add_container(bed, trio[0].ns, trio[0].conf(), "c1")
    c2 = add_container(bed, trio[1].ns, trio[1].conf(), "c2")
    assert c2.ip is not None
    wait_until("c1 -> c2", ping_check(c1.ns, c2.ip), timeout=5)
    trio[0].close()
    fresh = local_agent(bed, 1)
    try:
        outcome = fresh.reconcile(cluster(bed))
        assert (outcome.operations, outcome.writes, outcome.converged) == (0, 0, True)
    finally:
        fresh.close()
    trio[0] = local_agent(bed, 1)  # the fixture closes it
    assert ping_check(c1.ns, c2.ip)()


def test_overlay_going_away_removes_only_what_is_ours(bed: Bed, trio: list[LocalAgent]) -> None:
    a1 = trio[0]
    sh("ip", "-n", a1.ns, "link", "add", "m-foreign", "type", "bridge")
    sh("ip", "-n", a1.ns, "route", "add", "203.0.113.0/24", "via", bed.agent_ip(2))
    doc = cluster(bed)
    doc["agents"][0]["overlays"] = []  # type: ignore[index]
    outcome = a1.reconcile(doc)
    assert outcome.converged
    names = {link["ifname"] for link in ipj(a1.ns, "link", "show")}
    assert names == {"lo", "eth0", "m-foreign"}
    assert routes(a1.ns) == set()
    assert {r["dst"] for r in ipj(a1.ns, "route", "show")} >= {"203.0.113.0/24"}
    assert (
        sh(
            "ip", "netns", "exec", a1.ns, "nft", "list", "table", "ip", "overlay_agent", check=False
        ).returncode
        != 0
    )
    assert not a1.conf().exists()


def test_vtep_with_wrong_port_is_recreated(bed: Bed, trio: list[LocalAgent]) -> None:
    a1 = trio[0]
    sh("ip", "-n", a1.ns, "link", "del", "vtep1024")
    sh(
        "ip",
        "-n",
        a1.ns,
        "link",
        "add",
        "vtep1024",
        "address",
        "70:b3:d5:80:00:01",
        "type",
        "vxlan",
        "id",
        "1024",
        "dstport",
        "4789",
        "nolearning",
    )
    assert a1.reconcile(cluster(bed)).converged
    (link,) = ipj(a1.ns, "-d", "link", "show", "vtep1024")
    assert link["linkinfo"]["info_data"]["port"] == 64000
    assert (routes(a1.ns), neighbours(a1.ns), fdb(a1.ns)) == expected_peer_objects(
        bed, 1, (1, 2, 3)
    )


def test_a_second_overlay_gets_its_own_bridges_routes_and_cni_config(
    bed: Bed, trio: list[LocalAgent]
) -> None:
    two = [statedoc.DCOS, ("blue", "10.99.0.0/16", 28)]
    doc = statedoc.state([statedoc.record(bed.agent_ip(k), k, two) for k in (1, 2, 3)], two)
    for a in trio:
        assert a.reconcile(doc).converged
    names = {link["ifname"] for link in ipj(trio[0].ns, "link", "show")}
    assert {"m-blue", "d-blue", "m-dcos", "d-dcos"} <= names
    assert ("10.99.0.16/28", "44.128.0.2") in routes(trio[0].ns)
    blue1 = add_container(bed, trio[0].ns, trio[0].conf("blue"), "b1")
    blue3 = add_container(bed, trio[2].ns, trio[2].conf("blue"), "b3")
    assert (blue1.ip, blue3.ip) == ("10.99.0.2", "10.99.0.34")
    wait_until("b1 -> b3", ping_check(blue1.ns, "10.99.0.34"), timeout=5)
