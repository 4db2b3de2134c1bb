"""End to end: three real overlay-master replicas on loopback, three ``overlay-agent`` processes
(each talking HTTP from the root namespace and programming its own agent namespace), containers
attached with the real CNI plugins."""

from __future__ import annotations

import re
import signal
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.harness.cluster import Replica
from tests.netns.agents import World, running_world
from tests.netns.harness import delete_fdb_by_hand, expected_peer_objects, fdb, neighbours, routes
from tests.netns.topology import Bed, del_container, ping_check, sh
from tests.waiting import wait_until

pytestmark = pytest.mark.netns


@pytest.fixture
def world(bed: Bed, tmp_path: Path) -> Iterator[World]:
    with running_world(bed, tmp_path) as w:
        yield w


def test_cluster_with_real_masters_pings_reports_status_and_forgets_deleted_agents(
    world: World,
) -> None:
    bed, agents = world.bed, world.agents
    state = world.master_state()
    by_ip = {a["ip"]: a for a in state["agents"]}
    for a in agents:
        wait_until(
            f"agent {a.k} status on the masters",
            lambda a=a: (
                [o.get("state") for o in world.master_state()["agents"] if o["ip"] == a.ip][0:1]
                and all(
                    o.get("state", {}).get("status") == "STATUS_OK"
                    for r in world.master_state()["agents"]
                    if r["ip"] == a.ip
                    for o in r["overlays"]
                )
            ),
        )
        assert by_ip[a.ip]["overlays"][0]["backend"]["vxlan"]["vtep_ip"] == f"44.128.0.{a.k}/20"
        assert (routes(a.ns), neighbours(a.ns), fdb(a.ns)) == expected_peer_objects(
            bed, a.k, (1, 2, 3)
        )
        local = a.get("/overlay-agent/overlay").json()
        assert local["overlays"][0]["state"] == {"status": "STATUS_OK"}

    cs = [world.container(a, f"c{a.k}") for a in agents]
    for src in cs:
        for dst in cs:
            if src is not dst and dst.ip:
                wait_until(f"{src.ns} -> {dst.ip}", ping_check(src.ns, dst.ip), timeout=5)

    replica = world.masters.replicas[1]
    answer = httpx.post(
        f"{replica.url}/overlay-master/agents/delete",
        json={"agents": [bed.agent_ip(3)]},
        headers=world.masters.auth,
        timeout=10,
    )
    assert answer.status_code == 200, answer.text
    for a in agents[:2]:
        wait_until(
            f"agent {a.k} to drop agent 3",
            lambda a=a: (
                (routes(a.ns), neighbours(a.ns), fdb(a.ns))
                == expected_peer_objects(bed, a.k, (1, 2))
            ),
            timeout=5,
        )
    assert cs[1].ip is not None
    assert ping_check(cs[0].ns, cs[1].ip)()


def test_route_deleted_by_hand_comes_back_on_the_periodic_pass(world: World) -> None:
    a1 = world.agents[0]
    sh("ip", "-n", a1.ns, "route", "del", "9.0.0.128/26")
    delete_fdb_by_hand(a1.ns, "70:b3:d5:80:00:03", world.bed.agent_ip(3))
    wait_until(
        "the periodic pass to repair agent 1",
        lambda: (routes(a1.ns), fdb(a1.ns)) == expected_peer_objects(world.bed, 1, (1, 2, 3))[::2],
        timeout=10,
    )


def test_agent_restart_while_containers_ping_loses_nothing(world: World) -> None:
    a1, a2 = world.agents[0], world.agents[1]
    c1, c2 = world.container(a1, "c1"), world.container(a2, "c2")
    assert c2.ip is not None
    wait_until("c1 -> c2", ping_check(c1.ns, c2.ip), timeout=5)
    log = world.bed.root / "ping.log"
    ping = world.bed.start(
        "ip", "netns", "exec", c1.ns, "ping", "-i", "0.01", "-c", "1500", c2.ip, log=log
    )
    assert a1.proc is not None
    world.bed.stop(a1.proc, signal.SIGTERM)
    world.start(a1)
    world.wait_ready(a1)
    assert ping.poll() is None, (
        "the ping ended before the restarted agent was ready: nothing was tested"
    )
    wait_until("the ping to finish", lambda: ping.poll() is not None, timeout=60, every=0.2)
    summary = log.read_text()
    assert re.search(r"1500 packets transmitted, 1500 received", summary), summary[-500:]


def test_masters_gone_keeps_the_data_plane_and_the_agent_retrying(world: World) -> None:
    a1, a2 = world.agents[0], world.agents[1]
    c1, c2 = world.container(a1, "c1"), world.container(a2, "c2")
    assert c2.ip is not None
    world.masters.stop_all()
    failures = a1.metric("overlay_agent_master_failures")
    passes = a1.metric('overlay_agent_reconciles_total{result="converged"}')
    wait_until(
        "agent 1 to fail over a few times and keep reconciling",
        lambda: (
            a1.metric("overlay_agent_master_failures") >= failures + 2
            and a1.metric('overlay_agent_reconciles_total{result="converged"}') >= passes + 2
        ),
        timeout=30,
        every=0.2,
    )
    assert (routes(a1.ns), neighbours(a1.ns), fdb(a1.ns)) == expected_peer_objects(
        world.bed, 1, (1, 2, 3)
    )
    assert ping_check(c1.ns, c2.ip)()
    assert a1.ready()


def test_containers_show_on_every_master_and_survive_a_leader_kill(world: World) -> None:
    """Agents report the containers CNI attached (host-local's leases) through the log: every
    replica lists them with the addresses CNI gave, a killed leader changes nothing, and a
    container removed with CNI DEL disappears."""
    masters = world.masters
    a1, a2 = world.agents[0], world.agents[1]
    c1, c2 = world.container(a1, "c1"), world.container(a2, "c2")

    def listed(replica: Replica) -> set[tuple[str, str, str | None]]:
        answer = httpx.get(f"{replica.url}/overlay-master/containers", timeout=5)
        if answer.status_code != 200:  # e.g. 503 while a new leader is elected
            return set()
        return {(c["id"], c["agent"], c.get("address")) for c in answer.json()["containers"]}

    want = {(c1.id, a1.ip, c1.ip), (c2.id, a2.ip, c2.ip)}
    for replica in masters.replicas:
        wait_until(f"the containers on {replica.url}", lambda r=replica: listed(r) == want)
    masters.kill(masters.leader())
    survivors = [r for r in masters.replicas if r.alive]
    for replica in survivors:
        wait_until("the containers after the kill", lambda r=replica: listed(r) == want)
    del_container(world.bed, c2)
    for replica in survivors:
        wait_until(
            "the removed container gone",
            lambda r=replica: listed(r) == {(c1.id, a1.ip, c1.ip)},
            timeout=15,
        )
