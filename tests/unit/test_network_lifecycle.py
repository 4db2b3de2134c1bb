"""Virtual networks as live objects: add, update and delete through the (pure) allocator."""

from __future__ import annotations

import json
import pickle
from pathlib import Path
from typing import Any

import pytest

from overlay_master import allocator as A
from overlay_master import dcos_json

from .allocator_helpers import check_invariants, network, registered, state_for

pytestmark = pytest.mark.unit

GOLDEN = Path(__file__).parent / "golden"
BLUE = {"name": "blue", "subnet": "10.10.0.0/16", "prefix": 24}


def added(state: A.ClusterState, overlay: dict[str, Any]) -> A.NetworkChanged:
    result = state.apply(A.add_network(overlay))
    assert isinstance(result, A.NetworkChanged), result
    return result


def rejected(state: A.ClusterState, command: dict[str, Any]) -> A.Rejected:
    before = state.canonical()
    result = state.apply(command)
    assert isinstance(result, A.Rejected), result
    assert state.canonical() == before  # a refused command changes nothing
    return result


def doc(state: A.ClusterState, ip: str) -> dict[str, Any]:
    assert state.network is not None
    return dcos_json.agent_json(state.agents[ip], state.network)


def test_a_new_network_reaches_every_agent_in_the_same_entry() -> None:
    state = state_for(network())
    registered(state, "10.0.0.1", bridges=False)  # a master: block only
    registered(state, "10.0.0.2")
    registered(state, "10.0.0.3")
    revision = state.revision
    result = added(state, BLUE)
    assert result.revision == revision + 1 == state.revision
    assert result.agents == ("10.0.0.1", "10.0.0.2", "10.0.0.3")
    blue = [doc(state, ip)["overlays"][1] for ip in result.agents]
    assert [o["subnet"] for o in blue] == ["10.10.0.0/24", "10.10.1.0/24", "10.10.2.0/24"]
    assert "mesos_bridge" not in blue[0] and "docker_bridge" not in blue[0]
    assert blue[1]["mesos_bridge"] == {"ip": "10.10.1.0/25", "name": "m-blue"}
    assert blue[1]["docker_bridge"] == {"ip": "10.10.1.128/25", "name": "d-blue"}
    assert all(state.agents[ip].revision == state.revision for ip in result.agents)
    assert (
        doc(state, "10.0.0.2")["overlays"][1]["backend"]
        == doc(state, "10.0.0.2")["overlays"][0]["backend"]
    )
    check_invariants(state)
    # an agent registering later gets it too, like any configured network
    assert [o.name for o in registered(state, "10.0.0.4").overlays] == ["dcos", "blue"]


def test_bad_networks_are_refused_naming_field_and_rule() -> None:
    state = state_for(network(overlays=[{"name": "dcos", "subnet": "9.0.0.0/8", "prefix": 26}]))
    registered(state, "10.0.0.1")
    cases = [
        ({**BLUE, "name": "x" * 14}, "invalid_network", "name"),
        ({**BLUE, "name": "host"}, "invalid_network", "reserved"),
        ({**BLUE, "prefix": 12}, "invalid_network", "prefix"),
        ({**BLUE, "subnet": "10.10.0.1/16"}, "invalid_network", "host bits"),
        ({**BLUE, "colour": "red"}, "invalid_network", "colour"),
        ({**BLUE, "allow_from": ["nope"]}, "invalid_network", "allow_from"),
        ({**BLUE, "name": "dcos"}, "network_exists", "already exists"),
        ({**BLUE, "subnet": "9.128.0.0/16"}, "network_overlap", "overlaps overlay 'dcos'"),
        ({**BLUE, "subnet": "44.128.0.0/24", "prefix": 26}, "network_overlap", "vtep_subnet"),
        ("blue", "invalid_network", "mapping"),
    ]
    for overlay, reason, words in cases:
        result = rejected(state, {"op": "add_network", "overlay": overlay})
        assert result.reason == reason, (overlay, result)
        assert words in result.message, (overlay, result.message)


def test_disable_stops_new_allocations_only_and_enable_catches_up() -> None:
    state = state_for(network())
    registered(state, "10.0.0.1")
    added(state, BLUE)
    result = state.apply(A.update_network("blue", enabled=False))
    assert isinstance(result, A.NetworkChanged) and result.changed and result.agents == ()
    assert state.agents["10.0.0.1"].overlay("blue") is not None  # kept
    assert [o.name for o in registered(state, "10.0.0.2").overlays] == ["dcos"]
    again = state.apply(A.update_network("blue", enabled=False))
    assert isinstance(again, A.NetworkChanged) and not again.changed
    enabled = state.apply(A.update_network("blue", enabled=True))
    assert isinstance(enabled, A.NetworkChanged) and enabled.agents == ("10.0.0.2",)
    assert state.agents["10.0.0.2"].overlay("blue") is not None
    check_invariants(state)


def test_a_network_added_disabled_gets_blocks_when_enabled() -> None:
    state = state_for(network())
    registered(state, "10.0.0.1")
    assert added(state, {**BLUE, "enabled": False}).agents == ()
    assert state.agents["10.0.0.1"].overlay("blue") is None
    result = state.apply(A.update_network("blue", enabled=True))
    assert isinstance(result, A.NetworkChanged) and result.agents == ("10.0.0.1",)


def test_delete_is_refused_while_agents_hold_blocks_unless_forced() -> None:
    state = state_for(network())
    registered(state, "10.0.0.1")
    added(state, BLUE)
    added(state, {"name": "red", "subnet": "10.20.0.0/16", "prefix": 24, "allow_from": ["blue"]})
    result = rejected(state, A.delete_network("blue"))
    assert result.reason == "network_in_use" and "10.0.0.1" in result.message
    deleted = state.apply(A.delete_network("blue", force=True))
    assert isinstance(deleted, A.NetworkChanged) and deleted.agents == ("10.0.0.1",)
    assert state.network is not None and state.network.names == ("dcos", "red")
    assert state.network.overlay("red").allow_from == ()  # type: ignore[union-attr]
    assert state.agents["10.0.0.1"].overlay("blue") is None
    assert "blue" not in state.blocks
    assert rejected(state, A.delete_network("blue")).reason == "unknown_network"
    check_invariants(state)


def test_an_unused_network_is_deleted_without_force() -> None:
    state = state_for(network())
    added(state, BLUE)
    assert isinstance(state.apply(A.delete_network("blue")), A.NetworkChanged)


def test_a_network_of_a_deleted_name_starts_fresh() -> None:
    state = state_for(network())
    registered(state, "10.0.0.1")
    registered(state, "10.0.0.2")
    added(state, BLUE)
    assert state.agents["10.0.0.2"].overlay("blue").subnet == "10.10.1.0/24"  # type: ignore[union-attr]
    state.apply(A.delete(["10.0.0.1"]))  # remembered: it held 10.10.0.0/24 of the old blue
    state.apply(A.delete_network("blue", force=True))
    added(state, {**BLUE, "prefix": 20})
    assert state.agents["10.0.0.2"].overlay("blue").subnet == "10.10.0.0/20"  # type: ignore[union-attr]
    back = registered(state, "10.0.0.1")
    assert back.overlay("blue").subnet == "10.10.16.0/20"  # type: ignore[union-attr]
    assert back.overlay("dcos").subnet == "9.0.0.0/26"  # type: ignore[union-attr]  # still its own
    check_invariants(state)


def test_exhaustion_on_add_is_recorded_per_agent() -> None:
    state = state_for(network())
    for i in range(1, 4):
        registered(state, f"10.0.0.{i}")
    result = added(state, {"name": "tiny", "subnet": "10.30.0.0/25", "prefix": 26})
    assert result.agents == ("10.0.0.1", "10.0.0.2", "10.0.0.3")
    assert state.agents["10.0.0.3"].skipped == (("tiny", "subnet_exhausted"),)
    assert doc(state, "10.0.0.3")["skipped_overlays"][0]["name"] == "tiny"


def test_allow_from_is_validated_and_shown_only_when_set() -> None:
    state = state_for(network())
    added(state, BLUE)
    for bad, words in (
        ([1], "list of network names"),
        (["nope"], "not a network"),
        (["blue"], "itself"),
        (["dcos", "dcos"], "more than once"),
    ):
        assert words in rejected(state, A.update_network("blue", allow_from=bad)).message
    ok = state.apply(A.update_network("blue", allow_from=["dcos"]))
    assert isinstance(ok, A.NetworkChanged) and ok.changed
    assert state.network is not None
    plain = dcos_json.network_json(state.network)
    assert plain["overlays"][1]["allow_from"] == ["dcos"]
    assert "allow_from" not in plain["overlays"][0]
    assert rejected(state, A.update_network("nope", enabled=True)).reason == "unknown_network"


def test_a_seed_does_not_change_a_configured_log() -> None:
    state = state_for(network())
    added(state, BLUE)
    before = state.canonical()
    other = network(overlays=[{"name": "other", "subnet": "11.0.0.0/8", "prefix": 24}])
    result = state.apply(A.configure(other, seed=True))
    assert isinstance(result, A.Configured) and not result.changed
    assert state.canonical() == before
    fresh = A.ClusterState()
    assert isinstance(fresh.apply(A.configure(other, seed=True)), A.Configured)
    assert fresh.network is not None and fresh.network.names == ("other",)


def test_a_log_written_before_live_networks_replays_to_the_same_state() -> None:
    """A log of the old entry format (configure adding and disabling overlays, no seed flag),
    and the state document the allocator of commit a168238 (before live networks) produced
    from it, kept in tests/unit/golden/."""
    golden = json.loads((GOLDEN / "log-before-live-networks.json").read_text())
    state = A.ClusterState()
    for entry in golden["log"]:
        assert not isinstance(state.apply(entry), A.Rejected), entry
    assert state.network is not None
    records = [dcos_json.agent_json(r, state.network) for r in state.agents.values()]
    assert state.revision == golden["revision"]
    assert dcos_json.state_json(records, state.network) == golden["state"]


def test_records_pickled_before_the_bridge_flags_existed_read_their_bridges() -> None:
    state = state_for(network())
    registered(state, "10.0.0.1", bridges=False)
    registered(state, "10.0.0.2")
    data = pickle.dumps(state)
    old: A.ClusterState = pickle.loads(data)
    for ip, record in list(old.agents.items()):  # as an old snapshot would load them
        del record.__dict__["mesos_bridge"], record.__dict__["docker_bridge"]
        old.agents[ip] = record
    assert old.agents["10.0.0.1"].bridges == (False, False)
    assert old.agents["10.0.0.2"].bridges == (True, True)
    added(old, BLUE)
    assert doc(old, "10.0.0.1")["overlays"][1].get("mesos_bridge") is None
    assert doc(old, "10.0.0.2")["overlays"][1]["mesos_bridge"]["name"] == "m-blue"
