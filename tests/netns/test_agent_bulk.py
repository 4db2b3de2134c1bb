"""The bulk netlink path (``netlink_bulk``) on a real kernel: hundreds of peers programmed in
chunks and checked with independent ``ip``/``bridge`` output, zero-write and one-peer passes after
it, one refused request among many, and the kernel-side dump filters keeping foreign objects out.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network
from typing import Any

import pytest

from overlay_agent.cluster import ClusterState
from overlay_agent.desired import AgentOptions, FdbEntry, Neighbour, Route
from overlay_agent.firewall import Firewall
from overlay_agent.netlink import Kernel
from overlay_agent.observed import ObservedRoute
from overlay_agent.plan import (
    DeleteFdb,
    DeleteNeighbour,
    DeleteRoute,
    ReplaceFdb,
    ReplaceNeighbour,
    ReplaceRoute,
)
from overlay_agent.reconciler import Outcome, Reconciler, Settings
from tests import statedoc
from tests.netns.harness import fdb, neighbours, routes
from tests.netns.topology import Bed, sh

pytestmark = pytest.mark.netns

ME = "10.0.0.1"
PEERS = 300  # 900 peer objects: several chunks of netlink_bulk.CHUNK requests


def underlay_ip(k: int) -> str:
    return f"10.0.{k >> 8}.{k & 255}"


def document(ks: range | list[int]) -> dict[str, Any]:
    """Us (VTEP 1, underlay ME) and remote agents ``ks`` (VTEP k, underlay 10.0.x.y)."""
    agents = [statedoc.record(ME, 1)] + [statedoc.record(underlay_ip(k), k) for k in ks]
    return statedoc.state(agents)


def expected(ks: range | list[int]) -> tuple[set[tuple[str, str]], ...]:
    return (
        {(str(statedoc.block("9.0.0.0/8", 26, k - 1)), str(statedoc.vtep_ip(k))) for k in ks},
        {(str(statedoc.vtep_ip(k)), statedoc.vtep_mac(k)) for k in ks},
        {(statedoc.vtep_mac(k), underlay_ip(k)) for k in ks},
    )


@dataclass
class Agent:
    ns: str
    kernel: Kernel
    reconciler: Reconciler
    revision: int = 0

    def reconcile(self, doc: dict[str, Any]) -> Outcome:
        self.revision += 1
        return self.reconciler.reconcile(ClusterState.from_document(doc, self.revision))


@pytest.fixture
def agent(bed: Bed) -> Iterator[Agent]:
    ns = bed.netns("bulk")
    sh("ip", "-n", ns, "link", "add", "eth0", "type", "veth", "peer", "name", "eth1")
    sh("ip", "-n", ns, "addr", "add", f"{ME}/16", "dev", "eth0")
    sh("ip", "-n", ns, "link", "set", "eth0", "up")
    options = AgentOptions(ip=IPv4Address(ME))
    kernel = Kernel(ns, IPv4Address(ME))
    try:
        reconciler = Reconciler(
            Settings(options, ns, None, bed.root / "data"), kernel, Firewall(ns)
        )
        yield Agent(ns, kernel, reconciler)
    finally:
        kernel.close()


def state_of(ns: str) -> tuple[set[tuple[str, str]], ...]:
    return routes(ns), neighbours(ns), fdb(ns)


def test_hundreds_of_peers_then_a_pass_that_writes_nothing(agent: Agent) -> None:
    peers = range(2, PEERS + 2)
    cold = agent.reconcile(document(peers))
    assert cold.converged
    assert cold.writes >= 3 * PEERS
    assert state_of(agent.ns) == expected(peers)
    again = agent.reconcile(document(peers))
    assert (again.operations, again.writes, again.converged) == (0, 0, True)
    assert state_of(agent.ns) == expected(peers)


def test_one_peer_added_is_one_neighbour_one_fdb_one_route(agent: Agent) -> None:
    peers = list(range(2, PEERS + 1))
    assert agent.reconcile(document(peers)).converged
    seen = agent.kernel.observe()
    outcome = agent.reconcile(document([*peers, PEERS + 1]))
    assert (outcome.operations, outcome.writes, outcome.converged) == (3, 3, True)
    assert state_of(agent.ns) == expected([*peers, PEERS + 1])
    after = agent.kernel.observe()
    assert len(after.routes - seen.routes) == 1
    assert len(after.neighbours - seen.neighbours) == 1
    assert len(after.fdb - seen.fdb) == 1


def test_departed_peers_are_removed_in_bulk(agent: Agent) -> None:
    assert agent.reconcile(document(range(2, PEERS + 2))).converged
    keep = list(range(2, 12))
    outcome = agent.reconcile(document(keep))
    assert outcome.converged
    assert outcome.operations == 3 * (PEERS - len(keep))
    assert state_of(agent.ns) == expected(keep)


def test_one_refused_request_fails_alone_and_the_rest_of_the_chunk_lands(agent: Agent) -> None:
    assert agent.reconcile(document([2])).converged
    good = [(k, IPv4Address(f"44.128.1.{k}")) for k in range(1, 60)]
    bad = Route(IPv4Network("198.51.100.0/24"), IPv4Address("203.0.113.9"))  # not on-link
    ops = [
        *[ReplaceNeighbour(Neighbour(ip, f"02:00:00:00:01:{k:02x}")) for k, ip in good[:30]],
        ReplaceRoute(bad),
        *[ReplaceNeighbour(Neighbour(ip, f"02:00:00:00:01:{k:02x}")) for k, ip in good[30:]],
        DeleteNeighbour(IPv4Address("44.128.2.1")),  # already gone: tolerated
        DeleteFdb("02:00:00:00:09:09", IPv4Address("10.0.9.9")),  # already gone: tolerated
        DeleteRoute(ObservedRoute(IPv4Network("198.51.100.0/24"), None, None)),  # tolerated
    ]
    failures = agent.kernel.apply_all(ops)
    assert [op for op, _ in failures] == [ReplaceRoute(bad)]
    assert "adding route 198.51.100.0/24 via 203.0.113.9" in str(failures[0][1])
    seen = {ip for ip, _ in neighbours(agent.ns)}
    assert {str(ip) for _, ip in good} <= seen


def test_dumps_see_only_our_objects(agent: Agent) -> None:
    assert agent.reconcile(document([2, 3])).converged
    ns = agent.ns
    sh("ip", "-n", ns, "link", "set", "eth1", "up")  # the veth peer of eth0, unused
    sh("ip", "-n", ns, "addr", "add", "192.0.2.1/24", "dev", "eth1")
    sh("ip", "-n", ns, "route", "add", "198.51.100.0/24", "via", "192.0.2.2")  # not ours
    sh(
        "ip",
        "-n",
        ns,
        "route",
        "add",
        "203.0.113.0/24",
        "via",
        "192.0.2.2",
        "proto",
        "211",
        "table",
        "100",
    )  # ours by protocol, but not in the main table
    sh(
        "ip",
        "-n",
        ns,
        "neigh",
        "add",
        "192.0.2.7",
        "lladdr",
        "02:00:00:00:00:07",
        "dev",
        "eth1",
        "nud",
        "permanent",
    )  # another device
    seen = agent.kernel.observe()
    assert {str(r.dst) for r in seen.routes} == {"9.0.0.64/26", "9.0.0.128/26"}
    assert {str(n.ip) for n in seen.neighbours} == {"44.128.0.2", "44.128.0.3"}
    assert {str(dst) for _, dst in seen.fdb} == {underlay_ip(2), underlay_ip(3)}
    # Deleting a destination deletes only our route there (protocol 211), never a foreign one.
    sh("ip", "-n", ns, "route", "add", "198.51.100.0/25", "via", "192.0.2.2")
    gone = DeleteRoute(ObservedRoute(IPv4Network("198.51.100.0/25"), None, None))
    assert agent.kernel.apply_all([gone]) == []
    assert "198.51.100.0/25" in sh("ip", "-n", ns, "route", "show").stdout


def test_fdb_replace_moves_a_peer_to_its_new_underlay_address(agent: Agent) -> None:
    assert agent.reconcile(document([2])).converged
    mac = statedoc.vtep_mac(2)
    failures = agent.kernel.apply_all([ReplaceFdb(FdbEntry(mac, IPv4Address("10.0.7.7")))])
    assert failures == []
    assert fdb(agent.ns) == {(mac, "10.0.7.7")}
