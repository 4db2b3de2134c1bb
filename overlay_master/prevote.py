"""Elections that a rejoining replica cannot force: pre-vote and leader stickiness for PySyncObj.

PySyncObj 0.3.17 has neither (docs/pysyncobj.md, "Behaviour the design depends on"): a replica
that times out raises its term and asks for votes, and any replica that sees the higher term drops
its leader, even when that leader is healthy. A replica that just started (after a crash, with a config the recovery
guard refuses, or with a stale log) times out before the leader's connection reaches it, so every
restart could depose the leader (seen as ``assert 8 == 7`` in the recovery-guard test: the commit
index moved by the new leader's no-op entry).

Design notes (the two checks of Ongaro's thesis §9.6 and §4.2.3, as in etcd's PreVote and
CheckQuorum)
------------
* The election timer: ``before_tick`` takes over PySyncObj's ``__raftElectionDeadline`` each
  tick (adopting it whenever PySyncObj re-arms it: a leader's message, a vote granted) and sets
  it to +inf, so PySyncObj can never start an election by itself; a check-then-let-through
  would race with the rest of the tick (a meta fsync between the two checks let an unguarded
  election through under load: term 1 -> 2 on a follower's restart).
* Pre-vote: when the timer runs out, ``before_tick`` re-arms it and asks every peer "would you vote for me at term + 1?" (``pre_vote``, carrying our last log index
  and term). A peer says yes only if that term is above its own, our log is at least as
  up-to-date as its log, and it has not heard from a live leader within the minimum election
  timeout. Nobody changes state on a pre-vote. Only when a majority (counting ourselves) said
  yes does the next tick let PySyncObj start its real election, at exactly that term, and only
  if no leader has been heard from in between.
* Stickiness: a follower that heard from a leader within the minimum election timeout drops a
  ``request_vote`` unread (no term change, no vote), and so does a leader that heard from a
  majority within it. Together: a replica that cannot reach the leader but whose peers can never
  raises anyone's term; a real failure (no leader heard for a timeout by a majority) still
  elects within one extra round trip.
* A starting replica asks for pre-votes after 0.1-0.3 s (``FIRST_TIMEOUT``) instead of a whole
  election timeout: it cannot disturb a live leader (its peers refuse while they hear from one),
  and after a restart of all three nobody waits 0.5-1 s before the first election.
* Pre-votes are answered at the start of the next tick, not when they arrive: the tick ends in
  one ``poll`` that handles every message waiting on every connection, so a replica whose tick
  thread stalled (CPU starvation, a long GC) first sees the leader's queued heartbeats and only
  then judges whether a leader is alive. Answered on arrival, a stalled follower granted a
  rejoining replica's pre-vote before reading the heartbeats behind it (seen under load: term
  1 -> 3 on a restart).
* A replica left at a higher term than the leader (its election started just as another replica
  won) would ignore the leader forever, and its votes are dropped by the sticky peers. When such
  a replica gets ``append_entries`` from a lower-term leader it answers ``term_notice`` (at most
  once per minimum timeout); the leader's guard hands PySyncObj a vote request for that term with
  an empty log, so the leader adopts the term and steps down without granting a vote (etcd does
  the same). That costs one election, only in that rare case.
* ``transferLeadership`` (Raft TimeoutNow) is not used by overlay; with the guard its forced
  election would be refused by sticky followers.
* Reads SyncObj's private fields (pysyncobj pinned to 0.3.17); runs on the tick thread only.
"""

from __future__ import annotations

import logging
import math
import random
import time
from collections.abc import Callable
from typing import Any

FOLLOWER, CANDIDATE, LEADER = 0, 1, 2
FIRST_TIMEOUT = (0.1, 0.3)  # seconds from start-up to the first pre-vote round
Message = dict[str, Any]
log = logging.getLogger(__name__)
Send = Callable[[Any, Message], Any]


class ElectionGuard:
    """Pre-vote and stickiness for one SyncObj (see the module notes)."""

    def __init__(self, syncobj: Any, send: Send) -> None:
        self.syncobj = syncobj
        self.send = send
        self.leader_contact = -math.inf  # when a leader's append_entries last arrived
        self.round_term: int | None = None  # term of the pre-vote round in progress
        self.grants: set[str] = set()
        self.won_term: int | None = None  # pre-vote won for this term: let the election run
        self.last_notice = -math.inf
        self.deadline = math.inf  # our election timer; PySyncObj's own is kept at +inf
        self.started = False
        self.asked: list[tuple[Any, Message]] = []  # pre-votes to answer at the next tick

    # -- SyncObj's private state --------------------------------------------------------------

    def _get(self, name: str) -> Any:
        return getattr(self.syncobj, "_SyncObj__" + name)

    @property
    def state(self) -> int:
        return int(self._get("raftState"))

    @property
    def term(self) -> int:
        return int(self._get("raftCurrentTerm"))

    def _last_log(self) -> tuple[int, int]:
        entry = self._get("raftLog")[-1]
        return int(entry[1]), int(entry[2])

    def _timeout(self) -> float:
        conf = self.syncobj.conf
        return float(
            conf.raftMinTimeout + (conf.raftMaxTimeout - conf.raftMinTimeout) * random.random()
        )

    @property
    def min_timeout(self) -> float:
        return float(self.syncobj.conf.raftMinTimeout)

    def _majority(self, count: int) -> bool:
        return count > (len(self._get("otherNodes")) + 1) / 2

    def in_lease(self, now: float) -> bool:
        """A live leader is in view: ours (follower) or a majority of followers (leader)."""
        since = now - self.min_timeout
        if self.state == LEADER:
            responses = self._get("lastResponseTime")
            return self._majority(1 + sum(1 for t in responses.values() if t > since))
        return self.leader_contact > since

    # -- hooks ----------------------------------------------------------------------------------

    def before_tick(self, now: float | None = None) -> None:
        """Run the election timer: a due election becomes a pre-vote round; a won round becomes
        PySyncObj's election, in this very tick."""
        now = time.monotonic() if now is None else now
        asked, self.asked = self.asked, []
        for node, message in asked:
            granted = self._grant(message, now)
            answer = {"type": "pre_vote_response", "term": message["term"], "granted": granted}
            self.send(node, answer)
        armed = self._get("raftElectionDeadline")
        if armed != math.inf:  # PySyncObj (re)armed its timer: a leader spoke, a vote went out
            self.deadline = armed
        if not self.started:
            self.started = True
            self.deadline = min(self.deadline, now + random.uniform(*FIRST_TIMEOUT))
        self._arm(math.inf)
        if self.state == LEADER:
            self.round_term = self.won_term = None
            return
        if self.deadline >= now:
            return
        if not (self._get("connectedNodes") or not self._get("otherNodes")):
            return  # PySyncObj itself waits for a connection
        target = self.term + 1
        if self.won_term == target and not self.in_lease(now):
            self.won_term = None
            self._arm(0.0)  # PySyncObj starts the real election at ``target`` in this tick
            return
        self.round_term, self.grants, self.won_term = target, {self.syncobj.selfNode.id}, None
        self.deadline = now + self._timeout()
        last_index, last_term = self._last_log()
        ask = {"type": "pre_vote", "term": target, "last_log_index": last_index}
        ask["last_log_term"] = last_term
        for node in self._get("otherNodes"):
            self.send(node, ask)
        self._check_won()

    def _arm(self, deadline: float) -> None:
        self.syncobj._SyncObj__raftElectionDeadline = deadline

    def receive(self, node: Any, message: Message) -> Message | None:
        """What SyncObj should see of ``message`` (None: nothing)."""
        kind = message.get("type")
        now = time.monotonic()
        if kind == "append_entries":
            if message["term"] >= self.term:
                self.leader_contact = now
            elif self.state != LEADER and now - self.last_notice > self.min_timeout:
                self.last_notice = now
                self.send(node, {"type": "term_notice", "term": self.term})
            return message
        if kind == "request_vote":
            return None if self.in_lease(now) else message
        if kind == "pre_vote":
            self.asked.append((node, message))
            return None
        if kind == "pre_vote_response":
            if message["granted"] and message["term"] == self.round_term and self.state != LEADER:
                self.grants.add(node.id)
                self._check_won()
            return None
        if kind == "term_notice":
            if message["term"] <= self.term:
                return None
            log.info("%s is at term %d, above ours: adopting it", node.id, message["term"])
            # a vote request no log can lose to: SyncObj adopts the term, grants nothing
            return {
                "type": "request_vote",
                "term": message["term"],
                "last_log_index": -1,
                "last_log_term": -1,
            }
        return message

    def _grant(self, message: Message, now: float) -> bool:
        if message["term"] <= self.term or self.in_lease(now):
            return False
        last_index, last_term = self._last_log()
        theirs = (message["last_log_term"], message["last_log_index"])
        return theirs >= (last_term, last_index)

    def _check_won(self) -> None:
        if self.in_lease(time.monotonic()):  # a leader spoke since the round began
            return
        if self.round_term is not None and self._majority(len(self.grants)):
            log.info(
                "pre-vote for term %d won (%s): starting an election",
                self.round_term,
                ", ".join(sorted(self.grants)),
            )
            self.won_term, self.round_term = self.round_term, None
            self.deadline = 0.0  # elect on the next tick
