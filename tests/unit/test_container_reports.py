"""Container reports through the (pure) allocator: replaced whole, checked against what the agent
holds, gone with their agent or network, and what makes a network "in use"."""

from __future__ import annotations

import pickle
from typing import Any

import pytest

from overlay_master import allocator as A

from .allocator_helpers import network, registered, state_for

pytestmark = pytest.mark.unit

BLUE = {"name": "blue", "subnet": "10.10.0.0/16", "prefix": 24}


def c(
    cid: str, address: str, half: str = "mesos", net: str = "dcos", **extra: Any
) -> dict[str, Any]:
    return {"id": cid, "network": net, "half": half, "address": address, **extra}


def reported(state: A.ClusterState, ip: str, *containers: dict[str, Any]) -> A.ContainersReported:
    result = state.apply(A.report_containers(ip, containers))
    assert isinstance(result, A.ContainersReported), result
    return result


def test_a_report_replaces_the_previous_one_whole() -> None:
    state = state_for(network())
    registered(state, "10.0.0.1")  # 9.0.0.0/26: mesos half .0/27, docker half .32/27
    first = reported(
        state,
        "10.0.0.1",
        c("a", "9.0.0.2", interface="eth0"),
        c("b", "9.0.0.34", "docker", name="web", mac="02:42:09:00:00:22"),
    )
    assert first.changed and first.count == 2 and first.revision == state.revision
    # kept in a canonical order: by network, half (docker before mesos), ID
    assert [x.id for x in state.containers["10.0.0.1"]] == ["b", "a"]
    same = reported(
        state,
        "10.0.0.1",
        c("b", "9.0.0.34", "docker", name="web", mac="02:42:09:00:00:22"),
        c("a", "9.0.0.2", interface="eth0"),
    )
    assert not same.changed and same.revision == first.revision  # order does not matter
    replaced = reported(state, "10.0.0.1", c("z", "9.0.0.3"))
    assert replaced.changed and [x.id for x in state.containers["10.0.0.1"]] == ["z"]
    empty = reported(state, "10.0.0.1")
    assert empty.changed and state.containers["10.0.0.1"] == ()


@pytest.mark.parametrize(
    ("entry", "words"),
    [
        (c("a", "9.0.0.34"), "not in the agent's mesos half"),
        (c("a", "9.0.0.2", "docker"), "not in the agent's docker half"),
        (c("a", "9.0.0.70"), "not in the agent's mesos half"),
        (c("a", "10.10.0.2", net="blue"), "holds no block of network 'blue'"),
        (c("a", "9.0.0.2", half="host"), "half must be one of"),
        (c("", "9.0.0.2"), "id must be"),
        ({"id": "a", "network": "dcos", "half": "mesos"}, "needs an address"),
        (c("a", "not-an-ip"), "not an IP address"),
        ("a", "must be an object"),
    ],
)
def test_a_bad_entry_refuses_the_whole_report(entry: Any, words: str) -> None:
    state = state_for(network())
    registered(state, "10.0.0.1")
    reported(state, "10.0.0.1", c("keep", "9.0.0.5"))
    before = state.canonical()
    command = {"op": "containers", "ip": "10.0.0.1", "containers": [c("ok", "9.0.0.6"), entry]}
    result = state.apply(command)
    assert isinstance(result, A.Rejected) and result.reason == "invalid_report", result
    assert "containers[1]" in result.message and words in result.message
    assert state.canonical() == before


def test_reports_of_unknown_agents_and_duplicates_are_refused() -> None:
    state = state_for(network())
    registered(state, "10.0.0.1")
    assert state.apply(A.report_containers("10.0.0.9", [])).reason == "unknown_agent"  # type: ignore[union-attr]
    twice = state.apply(A.report_containers("10.0.0.1", [c("a", "9.0.0.2"), c("a", "9.0.0.3")]))
    assert isinstance(twice, A.Rejected) and "twice" in twice.message


def test_an_agent_without_bridges_reports_nothing_on_them() -> None:
    state = state_for(network())
    registered(state, "10.0.0.1", bridges=False)
    result = state.apply(A.report_containers("10.0.0.1", [c("a", "9.0.0.2")]))
    assert isinstance(result, A.Rejected) and "half must be one of" in result.message


def test_containers_go_with_their_agent_and_their_network() -> None:
    state = state_for(network())
    registered(state, "10.0.0.1")
    registered(state, "10.0.0.2")
    state.apply(A.add_network(BLUE))
    reported(state, "10.0.0.1", c("a", "9.0.0.2"), c("b", "10.10.0.2", net="blue"))
    reported(state, "10.0.0.2", c("c", "9.0.0.66"))
    state.apply(A.delete(["10.0.0.2"]))
    assert "10.0.0.2" not in state.containers
    state.apply(A.delete_network("blue", force=True))
    assert [x.id for x in state.containers["10.0.0.1"]] == ["a"]


def test_a_network_is_in_use_while_containers_are_reported_on_it_or_unknown() -> None:
    state = state_for(network())
    registered(state, "10.0.0.1")
    registered(state, "10.0.0.2")
    state.apply(A.add_network(BLUE))
    refused = state.apply(A.delete_network("blue"))  # nobody has reported yet: unknown
    assert isinstance(refused, A.Rejected) and refused.reason == "network_in_use"
    reported(state, "10.0.0.1", c("b", "10.10.0.2", net="blue"))
    reported(state, "10.0.0.2", c("c", "9.0.0.66"))
    refused = state.apply(A.delete_network("blue"))
    assert isinstance(refused, A.Rejected) and "10.0.0.1" in refused.message
    assert "10.0.0.2" not in refused.message
    reported(state, "10.0.0.1")  # the container stopped
    deleted = state.apply(A.delete_network("blue"))
    assert isinstance(deleted, A.NetworkChanged), deleted
    assert set(deleted.agents) == {"10.0.0.1", "10.0.0.2"}


def test_snapshots_from_before_container_reports_load() -> None:
    state = state_for(network())
    registered(state, "10.0.0.1")
    old_state = dict(state.__dict__)
    del old_state["containers"]
    loaded = A.ClusterState.__new__(A.ClusterState)
    loaded.__setstate__(old_state)
    assert loaded.containers == {}
    again = pickle.loads(pickle.dumps(state))
    assert again.canonical() == state.canonical()
    reported(loaded, "10.0.0.1", c("a", "9.0.0.2"))
