"""plan(): desired + observed -> ordered operations (pure)."""

from __future__ import annotations

from dataclasses import replace
from ipaddress import (
    IPv4Address,
    IPv4Interface,
    IPv4Network,
    IPv6Address,
    IPv6Interface,
    IPv6Network,
)

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from overlay_agent.desired import Bridge, DesiredNet, FdbEntry, Neighbour, Route, Vtep
from overlay_agent.observed import (
    ObservedLink,
    ObservedNeighbour,
    ObservedNet,
    ObservedRoute,
    VxlanParams,
)
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
    plan,
)

pytestmark = pytest.mark.unit

VTEP = Vtep("vtep1024", 1024, 64000, "70:b3:d5:80:00:02", IPv4Interface("44.128.0.2/20"), 1450)
M = Bridge("m-dcos", "dcos", IPv4Interface("9.0.0.129/27"), 1450)
D = Bridge("d-dcos", "dcos", IPv4Interface("9.0.0.161/27"), 1450)
V6, M_GW6, D_GW6 = (
    IPv6Interface(a) for a in ("fd01:a::2/64", "fd01:b:0:2::1/65", "fd01:b:0:2:8000::1/65")
)
M6, D6 = replace(M, gateway6=M_GW6), replace(D, gateway6=D_GW6)


def peer(n: int) -> tuple[Neighbour, FdbEntry, Route]:
    vtep_ip = IPv4Address(f"44.128.0.{n}")
    mac = f"70:b3:d5:80:00:{n:02x}"
    return (
        Neighbour(vtep_ip, mac),
        FdbEntry(mac, IPv4Address(f"10.0.0.{n}")),
        Route(IPv4Network(f"9.0.{n}.0/26"), vtep_ip),
    )


def peer6(n: int) -> tuple[Neighbour, Route]:
    vtep_ip = IPv6Address(f"fd01:a::{n:x}")
    return (
        Neighbour(vtep_ip, f"70:b3:d5:80:00:{n:02x}"),
        Route(IPv6Network(f"fd01:b:0:{n:x}::/64"), vtep_ip),
    )


def want(
    *peers: int, bridges: tuple[Bridge, ...] = (M, D), vtep: Vtep | None = VTEP, dual: bool = False
) -> DesiredNet:
    """Peers ``peers``; ``dual``: dual stack (the VTEP, the bridges and the peers get IPv6)."""
    entries = [peer(n) for n in peers]
    six = [peer6(n) for n in peers] if dual else []
    if dual:
        vtep = replace(vtep, address6=V6) if vtep is not None else None
        bridges = tuple({M: M6, D: D6}.get(b, b) for b in bridges)
    return DesiredNet(
        vtep=vtep,
        bridges=frozenset(bridges),
        neighbours=frozenset([e[0] for e in entries] + [e[0] for e in six]),
        fdb=frozenset(e[1] for e in entries),
        routes=frozenset([e[2] for e in entries] + [e[1] for e in six]),
        masquerade=None,
        overlays=(),
    )


def vtep_link(**changes: object) -> ObservedLink:
    link = ObservedLink(
        name="vtep1024",
        index=7,
        kind="vxlan",
        up=True,
        mtu=1450,
        mac=VTEP.mac,
        owned=True,
        addresses=frozenset({VTEP.address}),
        vxlan=VxlanParams(1024, 64000, False),
    )
    return replace(link, **changes)  # type: ignore[arg-type]


def bridge_link(b: Bridge, index: int, **changes: object) -> ObservedLink:
    link = ObservedLink(
        b.name, index, "bridge", True, b.mtu, "02:00:00:00:00:01", True, frozenset(b.addresses)
    )
    return replace(link, **changes)  # type: ignore[arg-type]


def seen_matching(w: DesiredNet) -> ObservedNet:
    """What the kernel looks like once ``w`` is fully programmed."""
    return ObservedNet(
        vtep=vtep_link(addresses=frozenset(w.vtep.addresses)) if w.vtep else None,
        bridges=frozenset(
            bridge_link(b, 10 + i) for i, b in enumerate(sorted(w.bridges, key=lambda b: b.name))
        ),
        neighbours=frozenset(ObservedNeighbour(n.ip, n.mac, True) for n in w.neighbours),
        fdb=frozenset((e.mac, e.dst) for e in w.fdb),
        routes=frozenset(ObservedRoute(r.dst, r.via, 7) for r in w.routes),
        forwarding=w.forwarding,
        underlay_mtu=1500,
        forwarding6=w.forwarding6,
    )


EMPTY = ObservedNet(None, frozenset(), frozenset(), frozenset(), frozenset(), False, 1500)


def kinds(ops: list[Operation]) -> list[str]:
    return [type(op).__name__ for op in ops]


def test_matching_kernel_needs_nothing() -> None:
    w = want(3, 4, 5)
    assert plan(w, seen_matching(w)) == []


def test_cold_start_order_link_addresses_fdb_neighbour_route() -> None:
    ops = plan(want(3), EMPTY)
    assert kinds(ops) == [
        "CreateVtep",
        "CreateBridge",
        "CreateBridge",
        "AddAddress",
        "AddAddress",
        "AddAddress",
        "EnableForwarding",
        "ReplaceFdb",
        "ReplaceNeighbour",
        "ReplaceRoute",
    ]
    assert ops[3] == AddAddress("vtep1024", VTEP.address)


def test_removed_peer_goes_route_first() -> None:
    seen = seen_matching(want(3, 4))
    ops = plan(want(3), seen)
    n, f, r = peer(4)
    assert ops == [
        DeleteRoute(ObservedRoute(r.dst, r.via, 7)),
        DeleteNeighbour(n.ip),
        DeleteFdb(f.mac, f.dst),
    ]


def test_wrong_mtu_or_down_is_fixed_in_place_never_recreated() -> None:
    w = want(3)
    seen = replace(seen_matching(w), vtep=vtep_link(mtu=1500, up=False))
    assert plan(w, seen) == [SetLink("vtep1024", mtu=1450, up=True)]


@pytest.mark.parametrize(
    "changes",
    [
        {"mac": "70:b3:d5:80:00:99"},
        {"vxlan": VxlanParams(1024, 4789, False)},
        {"vxlan": VxlanParams(42, 64000, False)},
        {"vxlan": VxlanParams(1024, 64000, True)},
        {"kind": "dummy", "vxlan": None},
    ],
)
def test_incompatible_vtep_is_recreated_with_everything_on_it(changes: dict[str, object]) -> None:
    w = want(3)
    seen = replace(seen_matching(w), vtep=vtep_link(**changes))
    ops = plan(w, seen)
    assert kinds(ops) == [
        "DeleteLink",
        "CreateVtep",
        "AddAddress",
        "ReplaceFdb",
        "ReplaceNeighbour",
        "ReplaceRoute",
    ]
    assert ops[1] == CreateVtep(VTEP)


def test_changed_peer_values_are_replaced_not_deleted() -> None:
    w = want(3)
    n, f, r = peer(3)
    seen = replace(
        seen_matching(w),
        neighbours=frozenset({ObservedNeighbour(n.ip, "02:00:00:00:00:99", True)}),
        fdb=frozenset({(f.mac, IPv4Address("10.9.9.9"))}),
        routes=frozenset({ObservedRoute(r.dst, IPv4Address("44.128.0.99"), 7)}),
    )
    assert plan(w, seen) == [ReplaceFdb(f), ReplaceNeighbour(n), ReplaceRoute(r)]


def test_kernel_made_neighbours_are_left_alone_but_replaced_when_wanted() -> None:
    w = want(3)
    n, _, _ = peer(3)
    stray = ObservedNeighbour(IPv4Address("44.128.0.50"), "02:00:00:00:00:50", permanent=False)
    stale = ObservedNeighbour(n.ip, n.mac, permanent=False)
    seen = replace(seen_matching(w), neighbours=frozenset({stray, stale}))
    assert plan(w, seen) == [ReplaceNeighbour(n)]


def test_duplicate_fdb_remote_for_wanted_mac_is_deleted() -> None:
    w = want(3)
    _, f, _ = peer(3)
    seen = replace(
        seen_matching(w), fdb=frozenset({(f.mac, f.dst), (f.mac, IPv4Address("10.9.9.9"))})
    )
    assert plan(w, seen) == [DeleteFdb(f.mac, IPv4Address("10.9.9.9"))]


def test_bridges_adopted_fixed_and_only_our_stale_ones_removed() -> None:
    w = want(bridges=(M,))
    theirs = bridge_link(D, 11, owned=False)
    ours_stale = bridge_link(Bridge("m-old", "old", IPv4Interface("9.9.9.1/27"), 1450), 12)
    adopted = bridge_link(M, 10, owned=False, addresses=frozenset({IPv4Interface("9.0.0.1/27")}))
    seen = replace(seen_matching(w), bridges=frozenset({theirs, ours_stale, adopted}))
    assert plan(w, seen) == [
        DeleteAddress("m-dcos", IPv4Interface("9.0.0.1/27")),
        DeleteLink("m-old"),
        SetLink("m-dcos", tag=True),
        AddAddress("m-dcos", IPv4Interface("9.0.0.129/27")),
    ]


def test_no_vtep_wanted_removes_it_and_our_routes() -> None:
    old = want(3)
    ops = plan(want(bridges=(), vtep=None), seen_matching(old))
    assert kinds(ops) == [
        "DeleteRoute",
        "DeleteNeighbour",
        "DeleteFdb",
        "DeleteLink",
        "DeleteLink",
        "DeleteLink",
    ]


def test_forwarding_only_switched_on() -> None:
    w = want(bridges=())
    assert EnableForwarding() not in plan(w, replace(seen_matching(w), forwarding=False))
    w2 = want()
    assert plan(w2, replace(seen_matching(w2), forwarding=False)) == [EnableForwarding()]


def test_dual_stack_cold_start_and_ipv6_forwarding() -> None:
    w = want(3, dual=True)
    ops = plan(w, EMPTY)
    assert kinds(ops) == [
        "CreateVtep",
        "CreateBridge",
        "CreateBridge",
        "AddAddress",
        "AddAddress",
        "AddAddress",
        "AddAddress",
        "AddAddress",
        "AddAddress",
        "EnableForwarding",
        "EnableForwarding",
        "ReplaceFdb",  # one per peer, whatever the families
        "ReplaceNeighbour",
        "ReplaceNeighbour",
        "ReplaceRoute",
        "ReplaceRoute",
    ]
    assert ops[3:5] == [
        AddAddress("vtep1024", VTEP.address),
        AddAddress("vtep1024", V6),
    ]
    assert ops[9:11] == [EnableForwarding(4), EnableForwarding(6)]
    assert ops[-1] == ReplaceRoute(peer6(3)[1])  # IPv4 sorts first
    assert plan(w, replace(seen_matching(w), forwarding6=False)) == [EnableForwarding(6)]


def test_ipv6_drift_is_repaired_and_unwanted_ipv6_addresses_go() -> None:
    w = want(3, dual=True)
    n6, r6 = peer6(3)
    stray = IPv6Interface("fd01:99::1/64")
    seen = seen_matching(w)
    assert seen.vtep is not None
    seen = replace(
        seen,
        vtep=replace(seen.vtep, addresses=frozenset({VTEP.address, stray})),
        neighbours=frozenset(x for x in seen.neighbours if x.ip != n6.ip),
        routes=frozenset(x for x in seen.routes if x.dst != r6.dst),
    )
    assert plan(w, seen) == [
        DeleteAddress("vtep1024", stray),
        AddAddress("vtep1024", V6),
        ReplaceNeighbour(n6),
        ReplaceRoute(r6),
    ]
    assert plan(want(3), seen_matching(w)) == [  # back to IPv4 only
        DeleteRoute(ObservedRoute(r6.dst, r6.via, 7)),
        DeleteNeighbour(n6.ip),
        DeleteAddress("vtep1024", V6),
        DeleteAddress("d-dcos", D_GW6),
        DeleteAddress("m-dcos", M_GW6),
    ]


# -- property: applying the plan to a model kernel converges in one round -------------------------


def simulate(seen: ObservedNet, ops: list[Operation]) -> ObservedNet:
    """A model of the kernel's effect of each operation (what netlink.apply does for real)."""
    s = seen
    for op in ops:
        match op:
            case DeleteRoute(r):
                s = replace(s, routes=frozenset(x for x in s.routes if x.dst != r.dst))
            case DeleteNeighbour(ip):
                s = replace(s, neighbours=frozenset(x for x in s.neighbours if x.ip != ip))
            case DeleteFdb(mac, dst):
                s = replace(s, fdb=s.fdb - {(mac, dst)})
            case DeleteLink(name) if s.vtep and s.vtep.name == name:
                s = replace(
                    s,
                    vtep=None,
                    neighbours=frozenset(),
                    fdb=frozenset(),
                    routes=frozenset(x for x in s.routes if x.oif != s.vtep.index),
                )
            case DeleteLink(name):
                s = replace(s, bridges=frozenset(b for b in s.bridges if b.name != name))
            case CreateVtep(v):
                s = replace(
                    s,
                    vtep=ObservedLink(
                        v.name,
                        7,
                        "vxlan",
                        True,
                        v.mtu,
                        v.mac,
                        True,
                        frozenset(),
                        VxlanParams(v.vni, v.port, False),
                    ),
                )
            case CreateBridge(b):
                s = replace(
                    s,
                    bridges=s.bridges
                    | {
                        ObservedLink(
                            b.name,
                            50,
                            "bridge",
                            True,
                            b.mtu,
                            "02:00:00:00:00:02",
                            True,
                            frozenset(),
                        )
                    },
                )
            case SetLink(name, mtu, up, tag):
                s = _edit_link(
                    s,
                    name,
                    lambda li: replace(
                        li, mtu=mtu or li.mtu, up=li.up or up, owned=li.owned or tag
                    ),
                )
            case AddAddress(name, a):
                s = _edit_link(s, name, lambda li: replace(li, addresses=li.addresses | {a}))
            case DeleteAddress(name, a):
                s = _edit_link(s, name, lambda li: replace(li, addresses=li.addresses - {a}))
            case EnableForwarding(6):
                s = replace(s, forwarding6=True)
            case EnableForwarding():
                s = replace(s, forwarding=True)
            case ReplaceFdb(e):
                s = replace(s, fdb=frozenset(x for x in s.fdb if x[0] != e.mac) | {(e.mac, e.dst)})
            case ReplaceNeighbour(n):
                s = replace(
                    s,
                    neighbours=frozenset(x for x in s.neighbours if x.ip != n.ip)
                    | {ObservedNeighbour(n.ip, n.mac, True)},
                )
            case ReplaceRoute(r):
                assert s.vtep is not None
                s = replace(
                    s,
                    routes=frozenset(x for x in s.routes if x.dst != r.dst)
                    | {ObservedRoute(r.dst, r.via, s.vtep.index)},
                )
    return s


def _edit_link(s: ObservedNet, name: str, edit: object) -> ObservedNet:
    assert callable(edit)
    if s.vtep is not None and s.vtep.name == name:
        return replace(s, vtep=edit(s.vtep))
    return replace(s, bridges=frozenset(edit(b) if b.name == name else b for b in s.bridges))


peer_sets = st.frozensets(st.integers(min_value=3, max_value=12), max_size=6)


@settings(max_examples=200, deadline=None)
@given(
    before=peer_sets,
    after=peer_sets,
    bridges_before=st.booleans(),
    bridges_after=st.booleans(),
    vtep_drift=st.sampled_from([None, {"mtu": 1500}, {"mac": "02:00:00:00:00:07"}, {"up": False}]),
    dual_before=st.booleans(),
    dual_after=st.booleans(),
)
def test_plan_then_apply_converges(
    before: frozenset[int],
    after: frozenset[int],
    bridges_before: bool,
    bridges_after: bool,
    vtep_drift: dict[str, object] | None,
    dual_before: bool,
    dual_after: bool,
) -> None:
    old = want(*before, bridges=(M, D) if bridges_before else (), dual=dual_before)
    new = want(*after, bridges=(M, D) if bridges_after else (), dual=dual_after)
    seen = seen_matching(old)
    if vtep_drift and seen.vtep is not None:
        seen = replace(seen, vtep=replace(seen.vtep, **vtep_drift))  # type: ignore[arg-type]
    ops = plan(new, seen)
    assert plan(new, simulate(seen, ops)) == []
    # removals route first, then additions link first and route last
    ranks = [RANK[type(op)] for op in ops]
    assert ranks == sorted(ranks)


RANK: dict[type, int] = {
    DeleteRoute: 0,
    DeleteNeighbour: 1,
    DeleteFdb: 2,
    DeleteAddress: 3,
    DeleteLink: 4,
    CreateVtep: 5,
    CreateBridge: 5,
    SetLink: 5,
    AddAddress: 6,
    EnableForwarding: 7,
    ReplaceFdb: 8,
    ReplaceNeighbour: 9,
    ReplaceRoute: 10,
}
