"""The election guard's rules, driven through the same private fields PySyncObj keeps.

``Replica`` below is not a mock of the guard: it is the state PySyncObj 0.3.17 holds under the
names the guard reads (the integration tests run the guard inside real SyncObjs)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import pytest

from overlay_master.prevote import FOLLOWER, LEADER, ElectionGuard

pytestmark = pytest.mark.unit


@dataclass(frozen=True)
class Peer:
    id: str


@dataclass
class Conf:
    raftMinTimeout: float = 0.5
    raftMaxTimeout: float = 1.0


class Replica:
    def __init__(
        self, me: str, peers: list[str], term: int = 1, log_end: tuple[int, int] = (10, 1)
    ):
        self.selfNode = Peer(me)
        self.conf = Conf()
        self._SyncObj__raftState = FOLLOWER
        self._SyncObj__raftCurrentTerm = term
        self._SyncObj__raftLog = [(b"", log_end[0], log_end[1])]
        self._SyncObj__otherNodes = {Peer(p) for p in peers}
        self._SyncObj__connectedNodes = set(self._SyncObj__otherNodes)
        self._SyncObj__raftElectionDeadline = 0.0
        self._SyncObj__lastResponseTime: dict[Peer, float] = {}


@dataclass
class Wire:
    sent: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    def send(self, node: Peer, message: dict[str, Any]) -> None:
        self.sent.append((node.id, message))


def guard(replica: Replica) -> tuple[ElectionGuard, Wire]:
    wire = Wire()
    return ElectionGuard(replica, wire.send), wire


def heartbeat(term: int = 1) -> dict[str, Any]:
    return {"type": "append_entries", "term": term, "commit_index": 1}


def ask(term: int = 2, last: tuple[int, int] = (10, 1)) -> dict[str, Any]:
    return {"type": "pre_vote", "term": term, "last_log_index": last[0], "last_log_term": last[1]}


def test_a_due_election_becomes_a_pre_vote_and_pysyncobj_never_fires_by_itself() -> None:
    replica = Replica("a", ["b", "c"])
    g, wire = guard(replica)
    g.before_tick(now=100.0)
    assert replica._SyncObj__raftElectionDeadline == math.inf
    assert replica._SyncObj__raftCurrentTerm == 1
    assert sorted(n for n, m in wire.sent if m["type"] == "pre_vote") == ["b", "c"]
    assert all(m["term"] == 2 for _, m in wire.sent)


def test_a_won_round_lets_the_election_run_in_the_next_tick() -> None:
    replica = Replica("a", ["b", "c"])
    g, _ = guard(replica)
    g.before_tick(now=100.0)
    g.receive(Peer("b"), {"type": "pre_vote_response", "term": 2, "granted": True})
    g.before_tick(now=100.01)
    assert replica._SyncObj__raftElectionDeadline == 0.0  # PySyncObj elects in this tick


def test_refusals_and_stale_answers_do_not_win() -> None:
    replica = Replica("a", ["b", "c"])
    g, _ = guard(replica)
    g.before_tick(now=100.0)
    g.receive(Peer("b"), {"type": "pre_vote_response", "term": 2, "granted": False})
    g.receive(Peer("c"), {"type": "pre_vote_response", "term": 5, "granted": True})
    g.before_tick(now=100.01)
    assert replica._SyncObj__raftElectionDeadline == math.inf


def test_a_follower_that_hears_its_leader_refuses_pre_votes_and_drops_vote_requests() -> None:
    replica = Replica("b", ["a", "c"])
    g, wire = guard(replica)
    assert g.receive(Peer("a"), heartbeat()) is not None
    assert g.receive(Peer("c"), ask()) is None  # answered at the next tick, after the poll
    assert wire.sent == []
    vote = {"type": "request_vote", "term": 2, "last_log_index": 10, "last_log_term": 1}
    assert g.receive(Peer("c"), vote) is None
    replica._SyncObj__raftElectionDeadline = math.inf
    g.before_tick()
    assert wire.sent == [("c", {"type": "pre_vote_response", "term": 2, "granted": False})]


def test_without_a_leader_a_pre_vote_is_granted_only_to_an_up_to_date_log() -> None:
    replica = Replica("b", ["a", "c"], log_end=(10, 1))
    g, wire = guard(replica)
    g.receive(Peer("c"), ask(last=(9, 1)))
    g.receive(Peer("a"), ask(last=(10, 1)))
    g.receive(Peer("a"), ask(term=1, last=(20, 1)))  # not above our term
    g.before_tick(now=100.0)
    answers = [(n, m["granted"]) for n, m in wire.sent if m["type"] == "pre_vote_response"]
    assert answers == [("c", False), ("a", True), ("a", False)]


def test_a_leader_with_a_majority_in_view_refuses() -> None:
    replica = Replica("a", ["b", "c"])
    replica._SyncObj__raftState = LEADER
    g, wire = guard(replica)
    replica._SyncObj__lastResponseTime = {Peer("b"): 99.9, Peer("c"): 90.0}
    g.receive(Peer("c"), ask())
    g.before_tick(now=100.0)
    assert wire.sent == [("c", {"type": "pre_vote_response", "term": 2, "granted": False})]


def test_a_replica_stuck_above_the_leaders_term_makes_it_step_down() -> None:
    stuck = Replica("c", ["a", "b"], term=3)
    g, wire = guard(stuck)
    g.receive(Peer("a"), heartbeat(term=2))
    assert wire.sent == [("a", {"type": "term_notice", "term": 3})]
    leader = Replica("a", ["b", "c"], term=2)
    leader._SyncObj__raftState = LEADER
    lg, _ = guard(leader)
    seen = lg.receive(Peer("c"), {"type": "term_notice", "term": 3})
    assert seen == {"type": "request_vote", "term": 3, "last_log_index": -1, "last_log_term": -1}
