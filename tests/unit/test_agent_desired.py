"""desired(): cluster state (DC/OS shape) + me -> kernel objects."""

from __future__ import annotations

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

from overlay_agent.desired import (
    AgentOptions,
    Bridge,
    FdbEntry,
    Masquerade,
    Neighbour,
    Route,
    desired,
)
from overlay_agent.errors import StateError
from tests import statedoc

pytestmark = pytest.mark.unit

ME = AgentOptions(ip=IPv4Address("10.0.0.2"))


def rec(
    ip: str, n: int, overlays: list[tuple[str, str, int]] | None = None, bridges: bool = True
) -> dict[str, Any]:
    return statedoc.record(ip, n, overlays, bridges=bridges)


def doc(
    *agents: dict[str, Any], overlays: list[tuple[str, str, int]] | None = None
) -> dict[str, Any]:
    return statedoc.state(list(agents), overlays)


def test_reference_example_agent_gets_dcos_objects() -> None:
    """DC/OS's worked example (docs/dcos-overlay.md): master #1 (no bridges), agent #2 = us, agent #3."""
    state = doc(rec("10.0.0.1", 1, bridges=False), rec("10.0.0.2", 2), rec("10.0.0.3", 3))
    want = desired(state, ME, underlay_mtu=1500)
    assert want is not None
    assert want.vtep is not None
    assert (want.vtep.name, want.vtep.vni, want.vtep.port) == ("vtep1024", 1024, 64000)
    assert want.vtep.mac == "70:b3:d5:80:00:02"
    assert want.vtep.address == IPv4Interface("44.128.0.2/20")
    assert want.vtep.mtu == 1450
    assert want.bridges == {
        Bridge("m-dcos", "dcos", IPv4Interface("9.0.0.65/27"), 1450),
        Bridge("d-dcos", "dcos", IPv4Interface("9.0.0.97/27"), 1450),
    }
    assert want.neighbours == {
        Neighbour(IPv4Address("44.128.0.1"), "70:b3:d5:80:00:01"),
        Neighbour(IPv4Address("44.128.0.3"), "70:b3:d5:80:00:03"),
    }
    assert want.fdb == {
        FdbEntry("70:b3:d5:80:00:01", IPv4Address("10.0.0.1")),
        FdbEntry("70:b3:d5:80:00:03", IPv4Address("10.0.0.3")),
    }
    assert want.routes == {
        Route(IPv4Network("9.0.0.0/26"), IPv4Address("44.128.0.1")),
        Route(IPv4Network("9.0.0.128/26"), IPv4Address("44.128.0.3")),
    }
    assert want.masquerade == Masquerade(
        frozenset({IPv4Network("9.0.0.0/8")}), frozenset({IPv4Network("9.0.0.0/8")})
    )
    assert want.forwarding


def test_not_in_state_means_none() -> None:
    assert desired(doc(rec("10.0.0.9", 1)), ME, 1500) is None


def test_vtep_mtu_from_master_wins_over_underlay() -> None:
    state = doc(rec("10.0.0.2", 2))
    state["agents"][0]["overlays"][0]["backend"]["vxlan"]["vtep_mtu"] = 1420
    want = desired(state, ME, underlay_mtu=9000)
    assert want is not None and want.vtep is not None
    assert want.vtep.mtu == 1420
    assert {b.mtu for b in want.bridges} == {1420}


def test_underlay_mtu_minus_50_and_default() -> None:
    jumbo = desired(doc(rec("10.0.0.2", 2)), ME, underlay_mtu=9000)
    unknown = desired(doc(rec("10.0.0.2", 2)), ME, underlay_mtu=None)
    assert jumbo is not None and jumbo.vtep is not None and jumbo.vtep.mtu == 8950
    assert unknown is not None and unknown.vtep is not None and unknown.vtep.mtu == 1450


def test_options_turn_bridges_off_and_with_them_nat() -> None:
    options = AgentOptions(ip=IPv4Address("10.0.0.2"), mesos_bridge=False, docker_bridge=False)
    want = desired(doc(rec("10.0.0.2", 2), rec("10.0.0.3", 3)), options, 1500)
    assert want is not None
    assert want.bridges == frozenset()
    assert want.masquerade is None
    assert not want.forwarding
    assert len(want.routes) == 1  # peers are still reachable from the host


def test_only_shared_overlays_are_routed() -> None:
    two = [("dcos", "9.0.0.0/8", 26), ("blue", "10.99.0.0/16", 28)]
    state = doc(rec("10.0.0.2", 2, [two[0]]), rec("10.0.0.3", 3, two), overlays=two)
    want = desired(state, ME, 1500)
    assert want is not None
    assert want.routes == {Route(IPv4Network("9.0.0.128/26"), IPv4Address("44.128.0.3"))}
    assert want.masquerade is not None
    assert want.masquerade.overlays == {IPv4Network("9.0.0.0/8"), IPv4Network("10.99.0.0/16")}
    assert want.masquerade.sources == {IPv4Network("9.0.0.0/8")}


def test_two_overlays_give_two_routes_for_one_peer() -> None:
    two = [("dcos", "9.0.0.0/8", 26), ("blue", "10.99.0.0/16", 28)]
    state = doc(rec("10.0.0.2", 2, two), rec("10.0.0.3", 3, two), overlays=two)
    want = desired(state, ME, 1500)
    assert want is not None
    assert len(want.neighbours) == 1 and len(want.fdb) == 1
    assert {r.dst for r in want.routes} == {
        IPv4Network("9.0.0.128/26"),
        IPv4Network("10.99.0.32/28"),
    }
    assert len(want.bridges) == 4


def test_conflicting_peers_first_by_ip_wins_and_malformed_peer_skipped() -> None:
    clash = rec("10.0.0.4", 3)  # same VTEP as 10.0.0.3
    broken = {
        "ip": "10.0.0.5",
        "overlays": [
            {
                "info": {"name": "dcos"},
                "subnet": "9.0.1.0/26",
                "backend": {"vxlan": {"vtep_ip": "nonsense"}},
            }
        ],
    }
    not_a_record = {"overlays": []}
    state = doc(rec("10.0.0.2", 2), clash, rec("10.0.0.3", 3), broken, not_a_record)
    want = desired(state, ME, 1500)
    assert want is not None
    assert want.fdb == {FdbEntry("70:b3:d5:80:00:03", IPv4Address("10.0.0.3"))}


def test_peer_claiming_my_subnet_or_vtep_is_ignored() -> None:
    thief = rec("10.0.0.7", 7)
    thief["overlays"][0]["subnet"] = "9.0.0.64/26"  # ours
    twin = rec("10.0.0.8", 2)  # our VTEP IP and MAC
    want = desired(doc(rec("10.0.0.2", 2), thief, twin), ME, 1500)
    assert want is not None
    assert want.routes == frozenset() and want.neighbours == frozenset()


def test_no_overlays_means_no_vtep() -> None:
    want = desired(doc({"ip": "10.0.0.2", "overlays": []}), ME, 1500)
    assert want is not None
    assert want.vtep is None and want.bridges == frozenset() and want.routes == frozenset()


def test_own_malformed_record_raises() -> None:
    with pytest.raises(StateError):
        desired(doc({"ip": "10.0.0.2", "overlays": "nope"}), ME, 1500)
    bad = rec("10.0.0.2", 2)
    bad["overlays"][0]["backend"]["vxlan"]["vtep_mac"] = "zz"
    with pytest.raises(StateError):
        desired(doc(bad), ME, 1500)


def test_configurable_port_and_uppercase_mac_normalised() -> None:
    mine = rec("10.0.0.2", 2)
    mine["overlays"][0]["backend"]["vxlan"]["vtep_mac"] = "70:B3:D5:80:00:02"
    want = desired(doc(mine), AgentOptions(ip=IPv4Address("10.0.0.2"), vxlan_port=4789), 1500)
    assert want is not None and want.vtep is not None
    assert (want.vtep.port, want.vtep.mac) == (4789, "70:b3:d5:80:00:02")


def test_a_revision_that_changes_nothing_an_agent_reads_keeps_the_parts() -> None:
    """A container report elsewhere moves the revision with an empty delta: the agent keeps the
    same parts, so its reconciler reuses what it computed (no desired() for thousands of peers
    on every container start in the cluster)."""
    from overlay_agent.cluster import ClusterState

    first = ClusterState.from_document(doc(rec("10.0.0.2", 2), rec("10.0.0.3", 3)), revision=4)
    network = dict(first.network)  # the same value, as a new answer parses it
    empty = {"revision": 5, "full": False, "agents": [], "deleted": [], "network": network}
    second = first.apply(empty)
    assert second.revision == 5 and second.same_content(first)
    changed = second.apply({**empty, "revision": 6, "agents": [rec("10.0.0.4", 4)]})
    assert not changed.same_content(second) and "10.0.0.4" in changed.agents
    renamed = second.apply({**empty, "revision": 7, "network": {**network, "vtep_mtu": 1400}})
    assert not renamed.same_content(second)


DUAL = [statedoc.DCOS6]
SIX = ("six", None, None, "fd01:c::/48", 64)  # an IPv6-only network


def test_dual_stack_vtep_bridges_peers_and_masquerade() -> None:
    state = doc(rec("10.0.0.1", 1, DUAL), rec("10.0.0.2", 2, DUAL), overlays=DUAL)
    want = desired(state, ME, 1500)
    assert want is not None and want.vtep is not None
    assert want.vtep.addresses == (
        IPv4Interface("44.128.0.2/20"),
        IPv6Interface("fd01:a::2/64"),
    )
    assert want.bridges == {
        Bridge(
            "m-dcos",
            "dcos",
            IPv4Interface("9.0.0.65/27"),
            1450,
            IPv6Interface("fd01:b::1:0:0:1/81"),
        ),
        Bridge(
            "d-dcos",
            "dcos",
            IPv4Interface("9.0.0.97/27"),
            1450,
            IPv6Interface("fd01:b::1:8000:0:1/81"),
        ),
    }
    assert want.forwarding and want.forwarding6
    # one FDB entry for the peer, a neighbour and a route per family
    assert want.fdb == {FdbEntry("70:b3:d5:80:00:01", IPv4Address("10.0.0.1"))}
    assert want.neighbours == {
        Neighbour(IPv4Address("44.128.0.1"), "70:b3:d5:80:00:01"),
        Neighbour(IPv6Address("fd01:a::1"), "70:b3:d5:80:00:01"),
    }
    assert want.routes == {
        Route(IPv4Network("9.0.0.0/26"), IPv4Address("44.128.0.1")),
        Route(IPv6Network("fd01:b::/80"), IPv6Address("fd01:a::1")),
    }
    nets = {IPv4Network("9.0.0.0/8"), IPv6Network("fd01:b::/64")}
    assert want.masquerade == Masquerade(frozenset(nets), frozenset(nets))
    assert want.route_overlay(Route(IPv6Network("fd01:b::/80"), IPv6Address("fd01:a::1"))) == "dcos"


def test_ipv6_only_network_has_ipv6_bridges_routes_and_no_ipv4_forwarding() -> None:
    overlays = [SIX]
    state = doc(rec("10.0.0.2", 2, overlays), rec("10.0.0.3", 3, overlays), overlays=overlays)
    want = desired(state, ME, 1500)
    assert want is not None and want.vtep is not None
    assert {(b.name, b.gateway, b.gateway6) for b in want.bridges} == {
        ("m-six", None, IPv6Interface("fd01:c:0:1::1/65")),
        ("d-six", None, IPv6Interface("fd01:c:0:1:8000::1/65")),
    }
    assert not want.forwarding and want.forwarding6
    assert want.routes == {Route(IPv6Network("fd01:c:0:2::/64"), IPv6Address("fd01:a::3"))}
    assert want.neighbours == {Neighbour(IPv6Address("fd01:a::3"), "70:b3:d5:80:00:03")}
    assert len(want.fdb) == 1


def test_ipv6_needs_a_vtep_address_on_both_ends() -> None:
    no_v6_peer = rec("10.0.0.3", 3, DUAL)
    del no_v6_peer["overlays"][0]["backend"]["vxlan"]["vtep_ip6"]
    state = doc(rec("10.0.0.2", 2, DUAL), no_v6_peer, rec("10.0.0.4", 4, DUAL), overlays=DUAL)
    want = desired(state, ME, 1500)
    assert want is not None
    assert {(r.dst.version, r.via) for r in want.routes} == {
        (4, IPv4Address("44.128.0.3")),
        (4, IPv4Address("44.128.0.4")),
        (6, IPv6Address("fd01:a::4")),
    }
    mine = rec("10.0.0.2", 2, DUAL)
    del mine["overlays"][0]["backend"]["vxlan"]["vtep_ip6"]
    alone = desired(doc(mine, rec("10.0.0.4", 4, DUAL), overlays=DUAL), ME, 1500)
    assert alone is not None and alone.vtep is not None and alone.vtep.address6 is None
    assert {r.dst.version for r in alone.routes} == {4}
    assert {n.ip.version for n in alone.neighbours} == {4}


def test_clashing_ipv6_vtep_drops_only_the_ipv6_part_of_the_later_peer() -> None:
    clash = rec("10.0.0.4", 4, DUAL)
    clash["overlays"][0]["backend"]["vxlan"]["vtep_ip6"] = "fd01:a::3/64"  # agent 3's
    thief = rec("10.0.0.5", 5, DUAL)
    thief["overlays"][0]["subnet6"] = "fd01:b:0:0:1::/80"  # our IPv6 block
    state = doc(rec("10.0.0.2", 2, DUAL), rec("10.0.0.3", 3, DUAL), clash, thief, overlays=DUAL)
    want = desired(state, ME, 1500)
    assert want is not None
    assert {r.via for r in want.routes} == {
        IPv4Address("44.128.0.3"),
        IPv6Address("fd01:a::3"),
        IPv4Address("44.128.0.4"),
        IPv4Address("44.128.0.5"),
    }
    assert len(want.fdb) == 3


def test_malformed_own_ipv6_vtep_raises() -> None:
    bad = rec("10.0.0.2", 2, DUAL)
    bad["overlays"][0]["backend"]["vxlan"]["vtep_ip6"] = "fd01::zz/64"
    with pytest.raises(StateError):
        desired(doc(bad, overlays=DUAL), ME, 1500)
