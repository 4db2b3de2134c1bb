"""docker.py: the pure spec/diff/hand-over, and the Engine API client against an in-memory
Docker (httpx.MockTransport); plus the agent's choice of daemon."""

from __future__ import annotations

from dataclasses import replace
from ipaddress import IPv4Address, IPv4Interface, IPv4Network, IPv6Network
from typing import Any

import httpx
import pytest

from overlay_agent.cli import docker_host
from overlay_agent.desired import AgentOptions, DesiredNet, desired
from overlay_agent.docker import (
    BRIDGE_NAME,
    LABEL,
    MASQUERADE,
    MTU,
    DockerNetwork,
    DockerOutcome,
    NetworkSpec,
    diff,
    differences,
    hand_over,
    parse,
    specs,
)
from overlay_agent.docker_engine import Docker
from overlay_agent.errors import ConfigError
from overlay_agent.observed import ObservedLink, ObservedNet
from overlay_agent.plan import DeleteLink, plan
from tests import statedoc
from tests.fakes.docker import FakeEngine, docker_edge

pytestmark = pytest.mark.unit

SPEC = NetworkSpec("dcos", "d-dcos", IPv4Network("9.0.0.32/27"), 1450)


def network(
    name: str = "dcos",
    subnet: str = "9.0.0.32/27",
    owned: bool = True,
    id: str = "n1",
    **options: str,
) -> DockerNetwork:
    return DockerNetwork(
        id=id,
        name=name,
        driver="bridge",
        subnets=frozenset([subnet]),
        options={**SPEC.options(), BRIDGE_NAME: f"d-{name}", **options},
        owned=owned,
    )


def want(ip: str = "192.0.2.11", **options: Any) -> DesiredNet:
    doc = statedoc.state([statedoc.record(ip, 1), statedoc.record("192.0.2.12", 2)])
    net = desired(doc, AgentOptions(ip=IPv4Address(ip), **options), 1500)
    assert net is not None
    return net


def seen_with(*bridges: tuple[str, bool]) -> ObservedNet:
    links = frozenset(
        ObservedLink(name, i, "bridge", True, 1450, f"02:42:00:00:00:0{i}", owned, frozenset())
        for i, (name, owned) in enumerate(bridges, 1)
    )
    return ObservedNet(None, links, frozenset(), frozenset(), frozenset(), True, 1500)


# -- pure ------------------------------------------------------------------------------------


def test_dual_stack_spec_enables_ipv6_with_the_ipv6_upper_half() -> None:
    doc = statedoc.state([statedoc.record("192.0.2.11", 1, [statedoc.DCOS6])], [statedoc.DCOS6])
    net = desired(doc, AgentOptions(ip=IPv4Address("192.0.2.11")), 1500)
    assert net is not None
    (spec,) = specs(net.overlays)
    assert spec == replace(SPEC, subnet6=IPv6Network("fd01:b::8000:0:0/81"))
    body = spec.request()
    assert body["EnableIPv6"] is True
    assert body["IPAM"]["Config"] == [{"Subnet": "9.0.0.32/27"}, {"Subnet": "fd01:b::8000:0:0/81"}]
    both = replace(network(), subnets=frozenset(["9.0.0.32/27", "fd01:b::8000:0:0/81"]), ipv6=True)
    assert differences(spec, both) == []
    assert differences(spec, replace(both, ipv6=False)) == ["EnableIPv6 False (want True)"]
    assert differences(SPEC, both) == [
        "subnet 9.0.0.32/27, fd01:b::8000:0:0/81 (want 9.0.0.32/27)",
        "EnableIPv6 True (want False)",
    ]  # an IPv4-only network of an older agent is stale once the overlay has IPv6, and back


def test_ipv6_only_spec_ignores_the_ipv4_pool_docker_adds_by_itself() -> None:
    six = NetworkSpec("six", "d-six", None, 1450, IPv6Network("fd01:c:0:1:8000::/65"))
    assert six.request()["IPAM"]["Config"] == [{"Subnet": "fd01:c:0:1:8000::/65"}]
    seen = replace(
        network("six"), subnets=frozenset(["172.18.0.0/16", "fd01:c:0:1:8000::/65"]), ipv6=True
    )
    assert differences(six, seen) == []
    assert parse({"Id": "x", "Name": "six", "EnableIPv6": True}).ipv6


def test_spec_is_dcos_docker_step_on_the_upper_half() -> None:
    (spec,) = specs(want().overlays)
    assert spec == SPEC  # agent 1: 9.0.0.0/26, upper half 9.0.0.32/27, MTU 1500 - 50
    body = spec.request()
    assert (body["Name"], body["Driver"], body["IPAM"]["Config"]) == (
        "dcos",
        "bridge",
        [{"Subnet": "9.0.0.32/27"}],
    )
    assert body["Options"] == {BRIDGE_NAME: "d-dcos", MASQUERADE: "false", MTU: "1450"}
    assert body["Labels"] == {LABEL: "1"}


def test_no_docker_bridge_no_spec() -> None:
    assert specs(want(docker_bridge=False).overlays) == []


def test_parse_reads_what_docker_lists() -> None:
    raw = {
        "Name": "dcos",
        "Id": "abc",
        "Driver": "bridge",
        "IPAM": {"Driver": "default", "Options": None, "Config": [{"Subnet": "9.0.0.32/27"}]},
        "Options": {BRIDGE_NAME: "d-dcos", MASQUERADE: "false", MTU: "1450"},
        "Labels": {LABEL: "1"},
    }
    net = parse(raw)
    assert (net.id, net.bridge, net.owned, differences(SPEC, net)) == ("abc", "d-dcos", True, [])
    bare = parse({"Name": "host", "Id": "h", "Driver": "host", "IPAM": {"Config": None}})
    assert (bare.bridge, bare.owned, bare.subnets) == (None, False, frozenset())


def test_matching_network_is_left_alone_whoever_made_it() -> None:
    for owned in (True, False):
        todo = diff([SPEC], [network(owned=owned), network("other", "10.1.0.0/24", False, "n2")])
        assert not todo and todo.refused == {}


def test_option_values_compare_like_docker_means_them() -> None:
    net = network(**{MASQUERADE: "False", MTU: "01450"})
    assert differences(SPEC, net) == []


def test_stale_network_of_ours_is_recreated() -> None:
    stale = network(subnet="9.0.0.96/27")
    todo = diff([SPEC], [stale])
    assert (todo.remove, todo.create) == ((stale,), (SPEC,))
    assert differences(SPEC, stale) == ["subnet 9.0.0.96/27 (want 9.0.0.32/27)"]
    wrong_mtu = network(**{MTU: "1500"})
    assert diff([SPEC], [wrong_mtu]).remove == (wrong_mtu,)


def test_stale_network_of_someone_else_is_refused_not_touched() -> None:
    theirs = network(subnet="9.0.0.96/27", owned=False, **{MASQUERADE: "true"})
    todo = diff([SPEC], [theirs])
    assert not todo
    assert "without label overlay.agent=1" in todo.refused["dcos"]
    assert "subnet 9.0.0.96/27 (want 9.0.0.32/27)" in todo.refused["dcos"]
    assert "enable_ip_masquerade=true (want false)" in todo.refused["dcos"]


def test_only_our_unwanted_networks_are_removed() -> None:
    ours, theirs = network("gone", "9.1.0.0/24"), network("kept", "9.2.0.0/24", owned=False)
    assert diff([], [ours, theirs]).remove == (ours,)


def test_hand_over_holds_docker_bridges_and_only_those() -> None:
    net = want()
    seen = seen_with(("d-dcos", True), ("d-old", True), ("m-old", True))
    outcome = DockerOutcome(errors={}, bridges=frozenset({"d-dcos", "d-old"}))
    kernel, problems = hand_over(net, seen, outcome)
    assert (kernel.held, problems) == (frozenset({"d-dcos", "d-old"}), {})
    assert plan(kernel, seen).count(DeleteLink("d-old")) == 0  # containers may still use it
    assert DeleteLink("m-old") in plan(kernel, seen)
    released = replace(kernel, held=frozenset())
    assert DeleteLink("d-old") in plan(released, seen)


def test_hand_over_holds_every_d_bridge_while_docker_is_unreachable() -> None:
    seen = seen_with(("d-dcos", True), ("d-old", True), ("m-old", True))
    kernel, _ = hand_over(want(), seen, DockerOutcome(errors={"dcos": "down"}, bridges=None))
    assert kernel.held == frozenset({"d-dcos", "d-old"})


def test_hand_over_reports_a_created_bridge_missing_from_our_namespace() -> None:
    outcome = DockerOutcome({}, frozenset({"d-dcos"}), frozenset({"d-dcos"}), changed=True)
    _, problems = hand_over(want(), seen_with(), outcome)
    assert "is dockerd running in another one?" in problems["dcos"]
    _, fine = hand_over(want(), seen_with(("d-dcos", False)), outcome)
    assert fine == {}


# -- the Engine API, in memory ---------------------------------------------------------------


@pytest.fixture
def engine() -> FakeEngine:
    return FakeEngine()


def docker(engine: FakeEngine) -> Docker:
    return docker_edge(engine)


def test_ensure_creates_then_a_second_pass_writes_nothing(engine: FakeEngine) -> None:
    d = docker(engine)
    first = d.ensure([SPEC])
    assert (first.errors, first.created, first.changed) == ({}, frozenset({"d-dcos"}), True)
    assert first.bridges == frozenset({"d-dcos"})
    (made,) = engine.networks.values()
    assert (made["Name"], made["Labels"], made["IPAM"]["Config"]) == (
        "dcos",
        {LABEL: "1"},
        [{"Subnet": "9.0.0.32/27"}],
    )
    engine.calls.clear()
    second = d.ensure([SPEC])
    assert (second.changed, engine.calls, d.writes) == (False, [("GET", "/networks")], 1)


def test_ensure_recreates_a_stale_network_of_ours(engine: FakeEngine) -> None:
    old = engine.add({**SPEC.request(), "IPAM": {"Config": [{"Subnet": "9.0.0.96/27"}]}})
    outcome = docker(engine).ensure([SPEC])
    assert outcome.errors == {} and old not in engine.networks
    assert engine.writes() == [("DELETE", f"/networks/{old}"), ("POST", "/networks/create")]
    (new,) = engine.networks.values()
    assert new["IPAM"]["Config"] == [{"Subnet": "9.0.0.32/27"}]


def test_stale_network_with_containers_fails_the_overlay_and_is_kept(engine: FakeEngine) -> None:
    old = engine.add({**SPEC.request(), "IPAM": {"Config": [{"Subnet": "9.0.0.96/27"}]}})
    engine.busy.add("dcos")
    outcome = docker(engine).ensure([SPEC])
    assert "cannot be replaced" in outcome.errors["dcos"]
    assert "403 network has active endpoints" in outcome.errors["dcos"]
    assert list(engine.networks) == [old] and outcome.bridges == frozenset({"d-dcos"})
    assert ("POST", "/networks/create") not in engine.calls


def test_removal_refused_keeps_the_bridge_held_and_no_overlay_fails(engine: FakeEngine) -> None:
    gone = NetworkSpec("gone", "d-gone", IPv4Network("9.1.0.0/24"), 1450)
    engine.add(gone.request())
    engine.busy.add("gone")
    outcome = docker(engine).ensure([SPEC])
    assert outcome.errors == {}
    assert outcome.bridges == frozenset({"d-dcos", "d-gone"})
    engine.busy.clear()
    assert docker(engine).ensure([SPEC]).bridges == frozenset({"d-dcos"})


def test_conflict_and_refusal_become_errors_of_their_overlay(engine: FakeEngine) -> None:
    engine.add({**SPEC.request(), "Labels": {}, "Options": {BRIDGE_NAME: "d-dcos"}})
    outcome = docker(engine).ensure([SPEC])
    assert "without label" in outcome.errors["dcos"]
    assert engine.writes() == []


def test_unreachable_docker_fails_every_docker_overlay(engine: FakeEngine) -> None:
    engine.down = True
    outcome = docker(engine).ensure([SPEC])
    assert outcome.bridges is None
    assert "cannot reach Docker at unix:///fake/docker.sock" in outcome.errors["dcos"]


def test_a_hung_docker_is_given_up_on_quickly_for_the_every_pass_read(engine: FakeEngine) -> None:
    timeouts: list[object] = []

    def hang(request: httpx.Request) -> httpx.Response:
        timeouts.append(request.extensions["timeout"]["read"])
        raise httpx.ReadTimeout("timed out", request=request)

    http = httpx.Client(transport=httpx.MockTransport(hang), base_url="http://docker")
    outcome = Docker("unix:///fake/docker.sock", http).ensure([SPEC])
    assert timeouts == [5.0]
    assert "did not answer in 5.0s" in outcome.errors["dcos"] and outcome.bridges is None


def test_real_socket_that_is_missing_is_an_error_not_a_crash(tmp_path: Any) -> None:
    d = Docker(f"unix://{tmp_path}/nothing.sock")
    try:
        outcome = d.ensure([SPEC])
    finally:
        d.close()
    assert outcome.bridges is None and "cannot reach Docker" in outcome.errors["dcos"]


# -- which daemon ----------------------------------------------------------------------------


def test_docker_host_defaults() -> None:
    env = {"DOCKER_HOST": "unix:///run/x.sock"}
    yes, no = (lambda p: True), (lambda p: False)
    assert docker_host(None, False, None, env, no) == "unix:///run/x.sock"
    assert docker_host(None, False, None, {}, yes) == "unix:///var/run/docker.sock"
    assert docker_host(None, False, None, {}, no) is None
    assert docker_host(None, False, "ns1", env, yes) is None  # host daemons live elsewhere
    assert docker_host("unix:///d/docker.sock", False, "ns1", {}, no) == "unix:///d/docker.sock"
    assert docker_host(None, True, None, env, yes) is None
    with pytest.raises(ConfigError, match="exclude"):
        docker_host("unix:///d.sock", True, None, {}, no)
    with pytest.raises(ConfigError, match="DOCKER_HOST"):
        docker_host(None, False, None, {"DOCKER_HOST": "ssh://box"}, no)


def test_gateway_docker_picks_is_the_one_the_agent_wants() -> None:
    (overlay,) = want().overlays
    assert overlay.docker_bridge is not None
    first_host = next(SPEC.subnet.hosts())
    assert overlay.docker_bridge.gateway == IPv4Interface(f"{first_host}/27")
