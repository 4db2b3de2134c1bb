"""Keeps the fake kernel honest: the same operations, passes and hand-made drift against a real
namespace (``netlink.Kernel``) and against ``tests/fakes`` must give the same failures (same
texts), the same write counts, the same outcomes pass by pass (so the same number of rounds) and
the same observations."""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from ipaddress import (
    IPv4Address,
    IPv4Interface,
    IPv4Network,
    IPv6Address,
    IPv6Interface,
    IPv6Network,
)
from typing import Any

import pytest

from overlay_agent.cluster import ClusterState
from overlay_agent.desired import AgentOptions, Bridge, FdbEntry, Neighbour, Route, Vtep
from overlay_agent.netlink import Kernel
from overlay_agent.observed import ObservedLink, ObservedNet, ObservedRoute
from overlay_agent.plan import (
    AddAddress,
    CreateBridge,
    CreateVtep,
    DeleteAddress,
    DeleteFdb,
    DeleteLink,
    DeleteNeighbour,
    DeleteRoute,
    EnableForwarding,
    Operation,
    ReplaceFdb,
    ReplaceNeighbour,
    ReplaceRoute,
    SetLink,
)
from overlay_agent.reconciler import Outcome, Reconciler, Settings
from tests import statedoc
from tests.fakes.firewall import FakeFirewall
from tests.fakes.kernel import FakeKernel
from tests.fakes.namespace import Namespace
from tests.netns.topology import Bed, sh

pytestmark = pytest.mark.netns

A = IPv4Address
VTEP = Vtep("vtep1024", 1024, 64000, "70:b3:d5:80:00:01", IPv4Interface("44.128.0.1/20"), 1450)
BRIDGE = Bridge("m-dcos", "dcos", IPv4Interface("9.0.0.1/27"), 1450)


@dataclass
class Twin:
    """One real namespace and one fake, driven alike."""

    bed: Bed
    ns: str
    real: Kernel
    fake: FakeKernel

    def apply(self, ops: list[Operation]) -> None:
        real = [(op, str(e)) for op, e in self.real.apply_all(ops)]
        fake = [(op, str(e)) for op, e in self.fake.apply_all(ops)]
        assert fake == real
        self.check()

    def check(self) -> None:
        assert self.fake.writes == self.real.writes
        assert normal(self.fake.observe()) == normal(self.real.observe())

    def drift(self, ip_args: list[str], fake: Callable[[Namespace], None]) -> None:
        """The same change by hand: ``ip ARGS`` in the real namespace, ``fake`` in the other."""
        sh("ip", "-n", self.ns, *ip_args)
        fake(self.fake.ns)


@pytest.fixture
def twin(bed: Bed) -> Iterator[Twin]:
    bed.build(agents=1)
    ns, ip = bed.agent_ns(1), A(bed.agent_ip(1))
    real = Kernel(ns, ip)
    try:
        yield Twin(bed, ns, real, FakeKernel(underlay_ip=ip))
    finally:
        real.close()


def normal(seen: ObservedNet) -> tuple[Any, ...]:
    """An observation without what differs by nature: interface indexes, bridges' random MACs."""
    names = {li.index: li.name for li in [seen.vtep, *seen.bridges] if li is not None}

    def link(li: ObservedLink) -> tuple[Any, ...]:
        mac = li.mac if li.kind == "vxlan" else ""
        return (li.name, li.kind, li.up, li.mtu, mac, li.owned, li.addresses, li.vxlan)

    return (
        link(seen.vtep) if seen.vtep is not None else None,
        frozenset(link(b) for b in seen.bridges),
        seen.neighbours,
        seen.fdb,
        frozenset((r.dst, r.via, names.get(r.oif or 0)) for r in seen.routes),
        seen.forwarding,
        seen.underlay_mtu,
    )


def test_refusals_and_tolerated_errors_are_the_kernels(twin: Twin) -> None:
    neighbour = Neighbour(A("44.128.0.2"), "70:b3:d5:80:00:02")
    twin.apply(
        [
            ReplaceNeighbour(neighbour),  # no vtep1024 yet
            DeleteRoute(ObservedRoute(IPv4Network("9.0.0.0/26"), None, None)),
            AddAddress("vtep1024", VTEP.address),
            SetLink("vtep1024", mtu=1400),
            DeleteAddress("vtep1024", VTEP.address),
            DeleteLink("vtep1024"),
        ]
    )
    twin.apply([CreateVtep(VTEP), CreateVtep(VTEP), AddAddress("vtep1024", VTEP.address)])
    twin.apply([AddAddress("vtep1024", VTEP.address), SetLink("vtep1024", mtu=10)])
    twin.apply(
        [
            ReplaceRoute(Route(IPv4Network("9.0.0.64/26"), A("45.0.0.2"))),  # not on the link
            DeleteRoute(ObservedRoute(IPv4Network("9.9.9.0/24"), None, None)),
            DeleteNeighbour(A("44.128.0.9")),
            DeleteFdb("70:b3:d5:80:00:09", A("192.0.2.9")),
            DeleteAddress("vtep1024", IPv4Interface("44.128.0.9/20")),
        ]
    )
    twin.apply([CreateBridge(BRIDGE), CreateBridge(BRIDGE), EnableForwarding()])
    long_name = Bridge("m-sixteen-chars", "x", IPv4Interface("9.1.0.1/27"), 1450)
    twin.apply([CreateBridge(long_name)])
    entry = FdbEntry("70:b3:d5:80:00:02", A("192.0.2.12"))
    twin.apply([ReplaceFdb(entry), ReplaceNeighbour(neighbour)])
    twin.apply([DeleteFdb(entry.mac, A("192.0.2.99"))])  # another remote: kept
    twin.apply([ReplaceFdb(FdbEntry(entry.mac, A("192.0.2.15")))])  # one remote per MAC


def test_what_the_kernel_drops_on_its_own(twin: Twin) -> None:
    route = Route(IPv4Network("9.0.0.64/26"), A("44.128.0.2"))
    neighbour = Neighbour(A("44.128.0.2"), "70:b3:d5:80:00:02")
    peers: list[Operation] = [
        ReplaceFdb(FdbEntry(neighbour.mac, A("192.0.2.12"))),
        ReplaceNeighbour(neighbour),
        ReplaceRoute(route),
    ]
    twin.apply([CreateVtep(VTEP), AddAddress("vtep1024", VTEP.address), *peers])
    second = IPv4Interface("10.9.0.1/24")
    twin.apply([AddAddress("vtep1024", second), DeleteAddress("vtep1024", VTEP.address)])
    twin.apply([DeleteAddress("vtep1024", second)])  # the last address: routes, neighbours go
    twin.apply([AddAddress("vtep1024", VTEP.address), *peers])
    secondary = IPv4Interface("44.128.0.7/20")
    twin.apply([AddAddress("vtep1024", secondary), DeleteAddress("vtep1024", VTEP.address)])
    twin.apply([AddAddress("vtep1024", VTEP.address), *peers])
    twin.drift(["link", "set", "vtep1024", "down"], lambda ns: ns.link_set("vtep1024", up=False))
    twin.check()
    twin.apply([SetLink("vtep1024", up=True), *peers])
    twin.apply([DeleteLink("vtep1024")])


def test_passes_converge_alike(twin: Twin) -> None:
    bed = twin.bed
    ip = bed.agent_ip(1)
    settings = Settings(AgentOptions(ip=A(ip)), twin.ns, None, bed.root / "data")
    reconcilers = [Reconciler(settings, k, FakeFirewall()) for k in (twin.real, twin.fake)]
    revision = 0

    def run(doc: dict[str, Any]) -> Outcome:
        nonlocal revision
        revision += 1
        state = ClusterState.from_document(doc, revision)
        real, fake = (r.reconcile(state) for r in reconcilers)
        assert fake == real
        twin.check()
        return real

    def records(*ks: int) -> list[dict[str, Any]]:
        return [statedoc.record(bed.agent_ip(k), k) for k in ks]

    s1 = statedoc.state(records(1, 2, 3))
    assert run(s1).converged
    assert run(s1).writes == 0
    twin.drift(
        ["route", "del", "9.0.0.128/26"], lambda ns: ns.route_del(IPv4Network("9.0.0.128/26"))
    )
    twin.drift(
        ["neigh", "del", "44.128.0.3", "dev", "vtep1024"],
        lambda ns: ns.neigh_del(ns.link("vtep1024").index, A("44.128.0.3")),
    )
    twin.drift(["link", "set", "vtep1024", "mtu", "1400"], lambda ns: ns.link_set("vtep1024", 1400))
    twin.drift(
        ["addr", "del", "9.0.0.1/27", "dev", "m-dcos"],
        lambda ns: ns.addr_del("m-dcos", IPv4Interface("9.0.0.1/27")),
    )
    twin.drift(
        ["route", "add", "9.0.1.0/26", "via", "44.128.0.2", "proto", "211"],
        lambda ns: ns.route_replace(
            IPv4Network("9.0.1.0/26"), A("44.128.0.2"), ns.link("vtep1024").index
        ),
    )
    twin.drift(["link", "set", "d-dcos", "down"], lambda ns: ns.link_set("d-dcos", up=False))
    assert run(s1).operations == 6
    twin.drift(["link", "set", "vtep1024", "down"], lambda ns: ns.link_set("vtep1024", up=False))
    assert run(s1).operations == 5  # up again, then 2 neighbours and 2 routes the kernel dropped
    s2 = copy.deepcopy(s1)  # our VTEP address moves: the old one's removal drops routes, neighbours
    s2["agents"][0]["overlays"][0]["backend"]["vxlan"]["vtep_ip"] = "44.128.0.9/20"
    moved = run(s2)
    assert moved.converged and moved.operations == 2 + 4  # a second round re-adds what went
    s3 = statedoc.state(records(1, 2, 4))
    s3["agents"][0] = s2["agents"][0]
    assert run(s3).converged
    s4 = copy.deepcopy(s3)  # a new MAC: vtep1024 is recreated, and everything on it
    s4["agents"][0]["overlays"][0]["backend"]["vxlan"]["vtep_mac"] = "70:b3:d5:80:00:99"
    assert run(s4).converged
    assert not run(statedoc.state(records(2, 4))).registered
    s6 = statedoc.state(records(1, 2, 4))
    s6["agents"][0]["overlays"] = []
    assert run(s6).converged
    assert twin.fake.observe().vtep is None
    assert run(s1).converged


VTEP6 = IPv6Interface("fd01:a::1/64")


def test_ipv6_refusals_and_what_the_kernel_drops_are_the_kernels(twin: Twin) -> None:
    route6 = Route(IPv6Network("fd01:b::/80"), IPv6Address("fd01:a::2"))
    neighbour6 = Neighbour(IPv6Address("fd01:a::2"), "70:b3:d5:80:00:02")
    peers: list[Operation] = [
        ReplaceFdb(FdbEntry(neighbour6.mac, A("192.0.2.12"))),
        ReplaceNeighbour(neighbour6),
        ReplaceRoute(route6),
        ReplaceNeighbour(Neighbour(A("44.128.0.2"), neighbour6.mac)),
        ReplaceRoute(Route(IPv4Network("9.0.0.64/26"), A("44.128.0.2"))),
    ]
    twin.apply([CreateVtep(VTEP), AddAddress("vtep1024", VTEP.address), ReplaceRoute(route6)])
    twin.apply([AddAddress("vtep1024", VTEP6), AddAddress("vtep1024", VTEP6), *peers])
    twin.apply([DeleteAddress("vtep1024", IPv6Interface("fd01:a::9/64")), EnableForwarding(6)])
    twin.apply([AddAddress("vtep1024", IPv6Interface("fd01:a::1/80"))])  # same address: EEXIST
    twin.apply([DeleteAddress("vtep1024", VTEP6)])  # routes and neighbours stay
    twin.apply([AddAddress("vtep1024", VTEP6), DeleteAddress("vtep1024", VTEP.address)])
    twin.apply([AddAddress("vtep1024", VTEP.address), *peers])
    twin.drift(["link", "set", "vtep1024", "down"], lambda ns: ns.link_set("vtep1024", up=False))
    twin.check()  # IPv6 address, routes and neighbours of both families gone; IPv4 address kept
    twin.apply([SetLink("vtep1024", up=True), *peers])  # no IPv6 address yet: route refused
    twin.apply([AddAddress("vtep1024", VTEP6), *peers])
    twin.apply([CreateBridge(BRIDGE6), DeleteLink("vtep1024")])


BRIDGE6 = Bridge("m-dcos", "dcos", None, 1450, IPv6Interface("fd01:b::1/81"))


def test_dual_stack_passes_converge_alike(twin: Twin) -> None:
    bed = twin.bed
    settings = Settings(AgentOptions(ip=A(bed.agent_ip(1))), twin.ns, None, bed.root / "data")
    reconcilers = [Reconciler(settings, k, FakeFirewall()) for k in (twin.real, twin.fake)]
    dual = [statedoc.DCOS6]

    def run(doc: dict[str, Any], revision: int) -> Outcome:
        state = ClusterState.from_document(doc, revision)
        real, fake = (r.reconcile(state) for r in reconcilers)
        assert fake == real
        twin.check()
        return real

    records = [statedoc.record(bed.agent_ip(k), k, dual) for k in (1, 2, 3)]
    s1 = statedoc.state(records, dual)
    assert run(s1, 1).converged
    assert run(s1, 2).writes == 0
    six = statedoc.block6("fd01:b::/64", 80, 2)
    twin.drift(["-6", "route", "del", str(six)], lambda ns: ns.route_del(six))
    twin.drift(
        ["-6", "neigh", "del", "fd01:a::2", "dev", "vtep1024"],
        lambda ns: ns.neigh_del(ns.link("vtep1024").index, IPv6Address("fd01:a::2")),
    )
    twin.drift(
        ["addr", "del", "fd01:b::8000:0:1/81", "dev", "d-dcos"],
        lambda ns: ns.addr_del("d-dcos", IPv6Interface("fd01:b::8000:0:1/81")),
    )
    assert run(s1, 3).operations == 3
    twin.drift(["link", "set", "m-dcos", "down"], lambda ns: ns.link_set("m-dcos", up=False))
    assert run(s1, 4).operations == 2  # up, and its IPv6 gateway back
    twin.drift(["link", "set", "vtep1024", "down"], lambda ns: ns.link_set("vtep1024", up=False))
    assert run(s1, 5).operations == 2 + 8
    assert run(statedoc.state(records[:2], dual), 6).operations == 5  # agent 3: FDB, 2 + 2
    assert run(s1, 7).operations == 5
