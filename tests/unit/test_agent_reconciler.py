"""Reconciler passes over the in-memory edges (tests/fakes): build, no-change, drift, partial
failure and retry, departed peers, our own record gone, firewall/CNI/Docker failures, networks
added, changed and deleted. The same passes on a real kernel: tests/netns
(test_agent_fake_kernel.py keeps the fake honest)."""

from __future__ import annotations

import errno
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Interface, IPv4Network, IPv6Interface
from pathlib import Path
from typing import Any

import pytest

from overlay_agent.cluster import ClusterState
from overlay_agent.desired import AgentOptions, Route
from overlay_agent.docker import LABEL
from overlay_agent.firewall import contents
from overlay_agent.observed import ObservedNeighbour, ObservedNet, ObservedRoute
from overlay_agent.plan import ReplaceNeighbour, ReplaceRoute
from overlay_agent.reconciler import Outcome, OverlayStatus, Reconciler, Settings
from overlay_wire.contract import Status
from tests import statedoc
from tests.fakes.docker import FakeEngine, docker_edge
from tests.fakes.firewall import FakeFirewall
from tests.fakes.kernel import FakeKernel

pytestmark = pytest.mark.unit

OTHER = ("other", "10.128.0.0/9", 24)
OVERLAYS = [statedoc.DCOS, OTHER]


def agent_ip(k: int) -> str:
    return f"192.0.2.{10 + k}"


def state(*ks: int, revision: int = 1, overlays: Any = None) -> ClusterState:
    doc = statedoc.state([statedoc.record(agent_ip(k), k, overlays) for k in ks], overlays)
    return ClusterState.from_document(doc, revision)


@dataclass
class Agent:
    reconciler: Reconciler
    kernel: FakeKernel
    firewall: FakeFirewall
    cni_dir: Path

    def seen(self) -> ObservedNet:
        return self.kernel.observe()

    def peers(self) -> tuple[set[str], set[str], set[tuple[str, str]]]:
        """(route destinations, neighbour IPs, FDB (MAC, remote)) now in the kernel."""
        seen = self.seen()
        return (
            {str(r.dst) for r in seen.routes},
            {str(n.ip) for n in seen.neighbours},
            {(mac, str(dst)) for mac, dst in seen.fdb},
        )


@pytest.fixture
def agent(tmp_path: Path) -> Agent:
    return make_agent(tmp_path)


def make_agent(tmp_path: Path, engine: FakeEngine | None = None) -> Agent:
    settings = Settings(
        AgentOptions(ip=IPv4Address(agent_ip(1))), None, tmp_path / "cni", tmp_path / "data"
    )
    kernel, firewall = FakeKernel(), FakeFirewall()
    if engine is not None:
        engine.ns = kernel.ns
    docker = docker_edge(engine) if engine is not None else None
    return Agent(
        Reconciler(settings, kernel, firewall, docker),
        kernel,
        firewall,
        settings.cni_dir or tmp_path,
    )


def expected_peers(*ks: int) -> tuple[set[str], set[str], set[tuple[str, str]]]:
    return (
        {str(statedoc.block("9.0.0.0/8", 26, k - 1)) for k in ks},
        {str(statedoc.vtep_ip(k)) for k in ks},
        {(statedoc.vtep_mac(k), agent_ip(k)) for k in ks},
    )


def ok(*names: str) -> dict[str, OverlayStatus]:
    return {name: OverlayStatus(Status.OK) for name in names}


def test_first_pass_builds_everything_and_the_next_writes_nothing(agent: Agent) -> None:
    first = agent.reconciler.reconcile(state(1, 2, 3))
    assert (first.registered, first.converged, first.statuses) == (True, True, ok("dcos"))
    seen = agent.seen()
    assert seen.vtep is not None and seen.vtep.owned and seen.vtep.up
    assert (seen.vtep.mac, seen.vtep.mtu) == ("70:b3:d5:80:00:01", 1450)
    assert seen.vtep.addresses == {IPv4Interface("44.128.0.1/20")}
    bridges = {b.name: (b.owned, b.up, b.mtu, set(b.addresses)) for b in seen.bridges}
    assert bridges == {
        "m-dcos": (True, True, 1450, {IPv4Interface("9.0.0.1/27")}),
        "d-dcos": (True, True, 1450, {IPv4Interface("9.0.0.33/27")}),
    }
    assert seen.forwarding and agent.peers() == expected_peers(2, 3)
    assert first.want is not None and first.want.masquerade is not None
    assert agent.firewall.table == contents(first.want.masquerade, first.want.isolation)
    assert (agent.cni_dir / "dcos.conflist").exists()
    # vtep (2 + address), 2 bridges (2 + address each), forwarding, 3 per peer; nft; CNI file
    assert (agent.kernel.writes, agent.firewall.writes, first.writes) == (
        3 + 6 + 1 + 6,
        1,
        16 + 1 + 1,
    )

    again = agent.reconciler.reconcile(state(1, 2, 3, revision=2))
    assert (again.operations, again.writes, again.converged) == (0, 0, True)
    assert agent.seen() == seen


def test_drift_made_by_hand_is_repaired(agent: Agent) -> None:
    agent.reconciler.reconcile(state(1, 2, 3))
    ns, vtep = agent.kernel.ns, agent.kernel.ns.link("vtep1024").index
    ns.route_del(statedoc.block("9.0.0.0/8", 26, 2))  # agent 3's route
    ns.neigh_del(vtep, statedoc.vtep_ip(2))
    ns.fdb_del(vtep, statedoc.vtep_mac(3), IPv4Address(agent_ip(3)))
    ns.link_del("d-dcos")
    ns.forwarding = False
    agent.firewall.table = None
    outcome = agent.reconciler.reconcile(state(1, 2, 3, revision=2))
    # route, neighbour, FDB entry, bridge (create + address), forwarding
    assert (outcome.operations, outcome.converged, outcome.statuses) == (6, True, ok("dcos"))
    assert agent.peers() == expected_peers(2, 3)
    assert agent.seen().bridge("d-dcos") is not None and agent.seen().forwarding
    assert agent.firewall.table is not None


def test_a_refused_operation_fails_its_overlay_only_and_the_rest_is_applied(
    agent: Agent,
) -> None:
    route = Route(IPv4Network("9.0.0.64/26"), IPv4Address("44.128.0.2"))  # dcos, to agent 2
    agent.kernel.refuse(ReplaceRoute(route), errno.ENOBUFS)
    failed = agent.reconciler.reconcile(state(1, 2, 3, overlays=OVERLAYS))
    assert not failed.converged
    assert failed.statuses == {
        "dcos": OverlayStatus(
            Status.FAILED, "adding route 9.0.0.64/26 via 44.128.0.2: No buffer space available"
        ),
        "other": OverlayStatus(Status.CONFIGURING),  # fine, but the pass did not converge
    }
    routes = {str(r.dst) for r in agent.seen().routes}
    assert routes == {"9.0.0.128/26", "10.128.1.0/24", "10.128.2.0/24"}
    assert agent.peers()[1:] == expected_peers(2, 3)[1:]

    agent.kernel.refusals.clear()
    retried = agent.reconciler.reconcile(state(1, 2, 3, revision=2, overlays=OVERLAYS))
    assert (retried.converged, retried.operations) == (True, 1)
    assert retried.statuses == ok("dcos", "other")


def test_an_operation_refused_once_is_retried_in_the_next_round_but_still_reported(
    agent: Agent,
) -> None:
    agent.kernel.fail(ReplaceNeighbour, errno.ENOMEM, nth=2)
    outcome = agent.reconciler.reconcile(state(1, 2, 3))
    assert agent.peers() == expected_peers(2, 3)  # round two added it
    assert not outcome.converged
    assert outcome.statuses["dcos"] == OverlayStatus(
        Status.FAILED, "adding neighbour 44.128.0.3 -> 70:b3:d5:80:00:03: Cannot allocate memory"
    )
    assert agent.reconciler.reconcile(state(1, 2, 3, revision=2)).statuses == ok("dcos")


def test_a_departed_peer_loses_route_neighbour_and_fdb(agent: Agent) -> None:
    agent.reconciler.reconcile(state(1, 2, 3))
    outcome = agent.reconciler.reconcile(state(1, 2, revision=2))
    assert (outcome.operations, outcome.converged) == (3, True)
    assert agent.peers() == expected_peers(2)


def test_our_record_gone_leaves_the_kernel_alone(agent: Agent) -> None:
    agent.reconciler.reconcile(state(1, 2, 3))
    before, writes = agent.seen(), agent.reconciler.writes
    outcome = agent.reconciler.reconcile(state(2, 3, revision=2))
    assert outcome == Outcome(
        2, registered=False, converged=False, operations=0, writes=0, statuses={}
    )
    assert (agent.seen(), agent.reconciler.writes) == (before, writes)


def test_our_vtep_address_moving_takes_a_second_round_in_the_same_pass(agent: Agent) -> None:
    agent.reconciler.reconcile(state(1, 2, 3))
    moved = statedoc.state([statedoc.record(agent_ip(k), k) for k in (1, 2, 3)])
    moved["agents"][0]["overlays"][0]["backend"]["vxlan"]["vtep_ip"] = "44.128.0.9/20"
    outcome = agent.reconciler.reconcile(ClusterState.from_document(moved, 2))
    # delete + add the address; the kernel drops routes and neighbours with the last address,
    # so the verification round puts two neighbours and two routes back
    assert (outcome.operations, outcome.converged) == (2 + 4, True)
    assert agent.peers() == expected_peers(2, 3)


def test_firewall_refused_fails_every_overlay_until_it_succeeds(agent: Agent) -> None:
    agent.firewall.refuse_next("Error: Could not process rule: No such file or directory")
    failed = agent.reconciler.reconcile(state(1, 2, 3, overlays=OVERLAYS))
    problem = "nft -f - failed: Error: Could not process rule: No such file or directory"
    assert failed.statuses == {n: OverlayStatus(Status.FAILED, problem) for n in ("dcos", "other")}
    assert agent.peers()[1] == expected_peers(2, 3)[1]  # the kernel step was done anyway
    again = agent.reconciler.reconcile(state(1, 2, 3, revision=2, overlays=OVERLAYS))
    assert (again.converged, again.writes, again.statuses) == (True, 1, ok("dcos", "other"))


def test_cni_config_unwritable_fails_the_mesos_overlays(tmp_path: Path) -> None:
    agent = make_agent(tmp_path)
    agent.cni_dir.write_text("not a directory")
    outcome = agent.reconciler.reconcile(state(1, 2))
    status = outcome.statuses["dcos"]
    assert status.status is Status.FAILED and status.error is not None
    assert status.error.startswith("Failed to write CNI config: writing CNI configs in")


def test_docker_makes_the_d_bridge_and_the_agent_adopts_it(tmp_path: Path) -> None:
    engine = FakeEngine()
    agent = make_agent(tmp_path, engine)
    first = agent.reconciler.reconcile(state(1, 2))
    assert (first.converged, first.statuses) == (True, ok("dcos"))
    (network,) = engine.networks.values()
    assert (network["Name"], network["Labels"]) == ("dcos", {LABEL: "1"})
    d = agent.seen().bridge("d-dcos")
    assert d is not None and (d.owned, d.mtu) == (True, 1450)  # tagged and set to the overlay MTU
    engine.calls.clear()
    again = agent.reconciler.reconcile(state(1, 2, revision=2))
    assert (again.writes, engine.writes()) == (0, [])


def test_docker_unreachable_fails_its_overlay_and_holds_the_d_bridge(tmp_path: Path) -> None:
    engine = FakeEngine()
    agent = make_agent(tmp_path, engine)
    agent.reconciler.reconcile(state(1, 2))
    engine.down = True
    gone = state(1, 2, revision=2, overlays=[OTHER])  # dcos gone: its d- bridge would go too
    outcome = agent.reconciler.reconcile(gone)
    error = outcome.statuses["other"].error or ""
    assert error.startswith("Unable to configure docker network: listing networks")
    assert agent.seen().bridge("d-dcos") is not None  # Docker may still use it
    assert agent.seen().bridge("m-dcos") is None
    engine.down = False
    back = agent.reconciler.reconcile(state(1, 2, revision=3, overlays=[OTHER]))
    assert back.statuses == ok("other") and agent.seen().bridge("d-dcos") is None


def test_routes_of_other_protocols_are_not_ours(agent: Agent) -> None:
    agent.reconciler.reconcile(state(1, 2))
    ns = agent.kernel.ns
    ns.route_replace(IPv4Network("203.0.113.0/24"), IPv4Address("192.0.2.1"), 2, protocol=4)
    outcome = agent.reconciler.reconcile(state(1, revision=2))
    assert outcome.converged and ns.routes.keys() == {IPv4Network("203.0.113.0/24")}
    assert agent.seen().neighbours == frozenset[ObservedNeighbour]()
    assert agent.seen().routes == frozenset[ObservedRoute]()


def with_allow_from(doc: dict[str, Any], target: str, *sources: str) -> dict[str, Any]:
    for overlay in doc["network"]["overlays"]:
        if overlay["name"] == target:
            overlay["allow_from"] = list(sources)
    return doc


def document(*ks: int, overlays: Any = None) -> dict[str, Any]:
    return statedoc.state([statedoc.record(agent_ip(k), k, overlays) for k in ks], overlays)


def test_a_network_added_is_built_in_one_pass_with_one_firewall_transaction(agent: Agent) -> None:
    agent.reconciler.reconcile(state(1, 2, 3))
    firewall_writes = agent.firewall.writes
    added = agent.reconciler.reconcile(state(1, 2, 3, revision=2, overlays=OVERLAYS))
    assert (added.converged, added.statuses) == (True, ok("dcos", "other"))
    assert {b.name for b in agent.seen().bridges} == {"m-dcos", "d-dcos", "m-other", "d-other"}
    assert agent.peers()[0] == expected_peers(2, 3)[0] | {"10.128.1.0/24", "10.128.2.0/24"}
    assert (agent.cni_dir / "other.conflist").exists()
    assert agent.firewall.writes == firewall_writes + 1
    (transaction,) = agent.firewall.transactions
    assert "add element inet overlay_agent allowed4 { 10.128.0.0/9 . 10.128.0.0/9 }" in transaction
    assert agent.firewall.table is not None
    assert agent.firewall.table["sources4"] == {IPv4Network("9.0.0.0/8"), IPv4Network(OTHER[1])}

    again = agent.reconciler.reconcile(state(1, 2, 3, revision=3, overlays=OVERLAYS))
    assert (again.operations, again.writes) == (0, 0)


def test_allow_from_changed_is_one_firewall_write_and_nothing_else(agent: Agent) -> None:
    agent.reconciler.reconcile(state(1, 2, 3, overlays=OVERLAYS))
    kernel, firewall = agent.kernel.writes, agent.firewall.writes
    opened = with_allow_from(document(1, 2, 3, overlays=OVERLAYS), "other", "dcos")
    outcome = agent.reconciler.reconcile(ClusterState.from_document(opened, 2))
    assert (outcome.operations, outcome.writes, outcome.converged) == (0, 1, True)
    assert (agent.kernel.writes, agent.firewall.writes) == (kernel, firewall + 1)
    assert agent.firewall.transactions == [
        "add element inet overlay_agent allowed4 { 9.0.0.0/8 . 10.128.0.0/9 }\n"
    ]
    same = agent.reconciler.reconcile(ClusterState.from_document(opened, 3))
    assert (same.operations, same.writes) == (0, 0)
    closed = agent.reconciler.reconcile(state(1, 2, 3, revision=4, overlays=OVERLAYS))
    assert (closed.operations, closed.writes) == (0, 1)
    assert agent.firewall.transactions[-1] == (
        "delete element inet overlay_agent allowed4 { 9.0.0.0/8 . 10.128.0.0/9 }\n"
    )


def test_a_network_deleted_takes_its_bridges_routes_cni_file_and_set_members(
    agent: Agent,
) -> None:
    agent.reconciler.reconcile(state(1, 2, 3, overlays=OVERLAYS))
    outcome = agent.reconciler.reconcile(state(1, 2, 3, revision=2, overlays=[OTHER]))
    assert (outcome.converged, outcome.statuses) == (True, ok("other"))
    assert {b.name for b in agent.seen().bridges} == {"m-other", "d-other"}
    assert agent.peers()[0] == {"10.128.1.0/24", "10.128.2.0/24"}
    assert sorted(p.name for p in agent.cni_dir.iterdir()) == ["other.conflist"]
    table = agent.firewall.table
    assert table is not None and agent.firewall.transactions[-1].startswith("delete element")
    assert all("9.0.0.0/8" not in str(e) for elements in table.values() for e in elements)
    again = agent.reconciler.reconcile(state(1, 2, 3, revision=3, overlays=[OTHER]))
    assert (again.operations, again.writes) == (0, 0)


DUAL = [statedoc.DCOS6]


def test_dual_stack_first_pass_then_nothing_and_a_peer_costs_five_writes(agent: Agent) -> None:
    first = agent.reconciler.reconcile(state(1, 2, 3, overlays=DUAL))
    assert (first.converged, first.statuses) == (True, ok("dcos"))
    seen = agent.seen()
    assert seen.vtep is not None
    assert seen.vtep.addresses == {
        IPv4Interface("44.128.0.1/20"),
        IPv6Interface("fd01:a::1/64"),
    }
    assert seen.forwarding and seen.forwarding6
    assert {str(n.ip) for n in seen.neighbours} == {
        "44.128.0.2",
        "44.128.0.3",
        "fd01:a::2",
        "fd01:a::3",
    }
    assert len(seen.fdb) == 2
    # vtep (2 + 2 addresses), 2 bridges (2 + 2 addresses each), 2 forwarding sysctls,
    # 5 per peer (1 FDB, 2 neighbours, 2 routes); nft; CNI file
    assert (agent.kernel.writes, first.writes) == (4 + 8 + 2 + 10, 24 + 1 + 1)
    again = agent.reconciler.reconcile(state(1, 2, 3, revision=2, overlays=DUAL))
    assert (again.operations, again.writes) == (0, 0)
    agent.reconciler.reconcile(state(1, 2, revision=3, overlays=DUAL))
    before = agent.kernel.writes
    added = agent.reconciler.reconcile(state(1, 2, 3, revision=4, overlays=DUAL))
    assert (added.operations, added.writes, agent.kernel.writes - before) == (5, 5, 5)
    kinds = sorted(type(op).__name__ for op in agent.kernel.applied[-5:])
    assert kinds == ["ReplaceFdb"] + ["ReplaceNeighbour"] * 2 + ["ReplaceRoute"] * 2


def test_ipv6_drift_made_by_hand_is_repaired(agent: Agent) -> None:
    agent.reconciler.reconcile(state(1, 2, 3, overlays=DUAL))
    ns, vtep = agent.kernel.ns, agent.kernel.ns.link("vtep1024").index
    ns.route_del(statedoc.block6("fd01:b::/64", 80, 2))  # agent 3's IPv6 route
    ns.neigh_del(vtep, statedoc.vtep_ip6(2))
    ns.addr_del("m-dcos", IPv6Interface("fd01:b::1/81"))
    ns.forwarding6 = False
    outcome = agent.reconciler.reconcile(state(1, 2, 3, revision=2, overlays=DUAL))
    assert (outcome.operations, outcome.converged) == (4, True)
    seen = agent.seen()
    assert seen.forwarding6 and statedoc.block6("fd01:b::/64", 80, 2) in {
        r.dst for r in seen.routes
    }
    assert statedoc.vtep_ip6(2) in {n.ip for n in seen.neighbours}
    m = seen.bridge("m-dcos")
    assert m is not None and IPv6Interface("fd01:b::1/81") in m.addresses
    # down and up again: the kernel drops the link's IPv6 addresses, routes and neighbours
    ns.link_set("vtep1024", up=False)
    outcome = agent.reconciler.reconcile(state(1, 2, 3, revision=3, overlays=DUAL))
    # up, the IPv6 address back; 2 neighbours and 2 routes per family
    assert (outcome.operations, outcome.converged) == (2 + 8, True)
