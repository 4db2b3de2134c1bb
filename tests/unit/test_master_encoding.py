"""Encoder: answer bytes equal the key-sorted JSON of the contract's documents, encoded once."""

from __future__ import annotations

import json
from typing import Any

import pytest

from overlay_master import allocator as A
from overlay_master import dcos_json
from overlay_master.allocator import ClusterState
from overlay_master.changes import ChangeLog
from overlay_master.encoding import Encoder, Snapshot
from overlay_master.network import NetworkConfig, to_plain

from .allocator_helpers import network, state_for

pytestmark = pytest.mark.unit


class Replica:
    """The allocator, its change log and an encoder, wired as a replica wires them."""

    def __init__(self, capacity: int = 100, **changes: Any) -> None:
        self.state = state_for(network(**changes))
        self.changes = ChangeLog(capacity)
        self.changes.record(self.state.revision, ())
        self.encoder = Encoder(self.changes)

    def apply(self, command: dict[str, Any]) -> A.Result:
        result = self.state.apply(command)
        self.changes.applied(self.state.revision, result)
        return result

    def snapshot(self) -> Snapshot:
        s = self.state
        return Snapshot(s.network, s.revision, list(s.agents.values()))


def network_config(replica: Replica) -> NetworkConfig:
    assert replica.state.network is not None
    return replica.state.network


def dumps(doc: object) -> bytes:
    return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()


def watch_doc(state: ClusterState, ips: list[str], deleted: list[str], full: bool) -> bytes:
    assert state.network is not None
    agents = [dcos_json.agent_json(state.agents[ip], state.network) for ip in ips]
    network = to_plain(state.network)
    doc = {"agents": agents, "deleted": deleted, "full": full, "network": network}
    return dumps({**doc, "revision": state.revision})


def test_watch_answers_are_the_sorted_json_of_the_equivalent_document() -> None:
    replica = Replica(vtep_subnet6="fd01:a::/64", vtep_mtu=1420)
    for ip in ("10.0.0.1", "10.0.0.2", "10.0.0.3"):
        replica.apply(A.register(ip, mesos_bridge=ip != "10.0.0.2"))
    since = replica.state.revision
    replica.apply(
        A.report_status("10.0.0.3", [{"name": "dcos", "status": "STATUS_FAILED", "error": "x"}])
    )
    replica.apply(A.delete(["10.0.0.1"]))
    replica.apply(A.register("10.0.0.4"))
    snap, state = replica.snapshot(), replica.state
    assert replica.encoder.watch_bytes(snap, since) == watch_doc(
        state, ["10.0.0.3", "10.0.0.4"], ["10.0.0.1"], full=False
    )
    assert replica.encoder.watch_bytes(snap, 0) == watch_doc(
        state, ["10.0.0.2", "10.0.0.3", "10.0.0.4"], [], full=True
    )
    assert replica.encoder.watch_bytes(snap, state.revision) == watch_doc(state, [], [], False)


def test_state_bytes_are_the_sorted_json_of_the_state_document() -> None:
    replica = Replica()
    replica.apply(A.register("10.0.0.1"))
    replica.apply(A.register("10.0.0.2", mesos_bridge=False, docker_bridge=False))
    state = replica.state
    assert state.network is not None
    agents = [dcos_json.agent_json(r, state.network) for r in state.agents.values()]
    expected = dumps(dcos_json.state_json(agents, state.network))
    assert replica.encoder.state_bytes(replica.snapshot()) == expected
    empty = Replica()
    assert empty.encoder.state_bytes(empty.snapshot()) == dumps(
        {"agents": [], "network": to_plain(network_config(empty))}
    )


def test_a_since_older_than_the_change_log_gets_the_full_state() -> None:
    replica = Replica(capacity=2)
    for i in range(1, 6):
        replica.apply(A.register(f"10.0.0.{i}"))
    snap = replica.snapshot()
    answer = json.loads(replica.encoder.watch_bytes(snap, 2))
    assert answer["full"] is True and len(answer["agents"]) == 5
    recent = json.loads(replica.encoder.watch_bytes(snap, snap.revision - 2))
    assert recent["full"] is False
    assert [a["ip"] for a in recent["agents"]] == ["10.0.0.4", "10.0.0.5"]


def test_answers_and_records_are_encoded_once_and_again_after_a_change() -> None:
    replica = Replica()
    replica.apply(A.register("10.0.0.1"))
    replica.apply(A.register("10.0.0.2"))
    encoder, snap = replica.encoder, replica.snapshot()
    since = snap.revision - 1
    assert encoder.watch_bytes(snap, since) is encoder.watch_bytes(snap, since)
    assert encoder.state_bytes(snap) is encoder.state_bytes(snap)
    # every since the change log cannot answer shares the one full answer
    assert encoder.watch_bytes(snap, 0) is encoder.watch_bytes(replica.snapshot(), 0)
    config = network_config(replica)
    first = encoder.agent_bytes(replica.state.agents["10.0.0.1"], config)
    assert encoder.agent_bytes(replica.state.agents["10.0.0.1"], config) is first
    replica.apply(A.report_status("10.0.0.1", [{"name": "dcos", "status": "STATUS_OK"}]))
    changed = encoder.agent_bytes(replica.state.agents["10.0.0.1"], config)
    assert changed != first and b"STATUS_OK" in changed
    # a new network config (adding an overlay) drops every cached encoding
    replica.apply(
        A.configure(
            network(
                overlays=[
                    *network()["overlays"],
                    {"name": "two", "subnet": "10.8.0.0/16", "prefix": 24},
                ]
            )
        )
    )
    new_network = network_config(replica)
    assert new_network is not config
    record = replica.state.agents["10.0.0.2"]
    assert encoder.agent_bytes(record, new_network) == dumps(
        dcos_json.agent_json(record, new_network)
    )
    after = replica.snapshot()
    assert json.loads(encoder.watch_bytes(after, since))["network"] == to_plain(new_network)


def test_answer_cache_is_bounded() -> None:
    replica = Replica()
    for i in range(1, 300):
        replica.apply(A.register(f"10.0.{i // 250}.{i % 250 + 1}"))
    snap = replica.snapshot()
    for since in range(snap.revision):
        replica.encoder.watch_bytes(snap, since)
    assert len(replica.encoder._answers) <= 257


def test_answers_of_older_revisions_are_dropped_once_a_newer_one_is_encoded() -> None:
    replica = Replica()
    for n in range(1, 6):
        replica.apply(A.register(f"10.0.0.{n}"))
    encoder = replica.encoder
    first = replica.snapshot()
    encoder.state_bytes(first)
    encoder.watch_bytes(first, first.revision - 1)
    for n in range(1, 30):
        report = {"name": "dcos", "status": "STATUS_FAILED", "error": f"failure {n}"}
        replica.apply(A.report_status("10.0.0.1", [report]))
        snap = replica.snapshot()
        encoder.state_bytes(snap)
        encoder.watch_bytes(snap, snap.revision - 1)
    assert {revision for _, _, revision in encoder._answers} == {snap.revision}
    assert encoder._answer_bytes == sum(len(b) for b in encoder._answers.values())
    # an answer of an older snapshot is still right, only not kept
    assert json.loads(encoder.state_bytes(first))["agents"][0]["overlays"][0].get("status") is None


def test_the_cache_keeps_within_its_byte_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    replica = Replica()
    for n in range(1, 6):
        replica.apply(A.register(f"10.0.0.{n}"))
    snap = replica.snapshot()
    size = len(replica.encoder.watch_bytes(snap, 0))
    monkeypatch.setattr("overlay_master.encoding.MAX_ANSWER_BYTES", 3 * size)
    encoder = Encoder(replica.changes)
    for since in range(snap.revision):  # one full answer per since, all of one revision
        encoder.watch_bytes(snap, since)
        assert encoder._answer_bytes <= 3 * size
