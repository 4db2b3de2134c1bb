"""The follower-side fix for PySyncObj's non-conflict log truncation (overlay_master.raft_transport).

docs/pysyncobj-nonconflict-truncation.md explains the bug; the last two tests are its reproducer:
a follower that acknowledged entries up to 20 gets the same entries again, cut at 15 (a resend
after the leader moved ``nextIndex`` back, capped by the batch size). Stock PySyncObj drops
16..20; with our transport the follower keeps them. The stock test is a canary: if a PySyncObj
upgrade fixes the bug it fails, and the workaround can go.
"""

from __future__ import annotations

import pickle
import socket
from typing import Any

import pytest
from pysyncobj import SyncObj, SyncObjConf
from pysyncobj.node import TCPNode
from pysyncobj.transport import TCPTransport

from overlay_master.raft_transport import ConflictOnlyTransport, trimmed

pytestmark = pytest.mark.unit


def entry(index: int, term: int) -> tuple[bytes, int, int]:
    return (b"\x00" + pickle.dumps(index), index, term)


def log_of(terms: dict[int, int]) -> list[tuple[bytes, int, int]]:
    return [entry(i, t) for i, t in sorted(terms.items())]


def append(prev: int, prev_term: int, entries: list[Any], term: int) -> dict[str, Any]:
    return {
        "type": "append_entries",
        "term": term,
        "commit_index": 0,
        "entries": entries,
        "prevLogIdx": prev,
        "prevLogTerm": prev_term,
    }


def test_a_resend_from_the_same_leader_becomes_an_empty_append_after_the_followers_log() -> None:
    log = log_of({i: 2 for i in range(1, 21)})
    message = append(10, 2, [entry(i, 2) for i in range(11, 16)], term=2)
    out = trimmed(log, message)
    assert (out["prevLogIdx"], out["prevLogTerm"], out["entries"]) == (20, 2, [])


def test_only_entries_the_follower_lacks_are_kept() -> None:
    log = log_of({i: 2 for i in range(1, 21)})
    message = append(10, 2, [entry(i, 2) for i in range(11, 26)], term=2)
    out = trimmed(log, message)
    assert out["prevLogIdx"] == 20
    assert [e[1] for e in out["entries"]] == [21, 22, 23, 24, 25]


def test_an_older_terms_log_is_truncated_only_from_the_first_conflict() -> None:
    log = log_of({**{i: 1 for i in range(1, 16)}})
    new = [entry(11, 1), entry(12, 1), entry(13, 3), entry(14, 3)]
    out = trimmed(log, append(10, 1, new, term=3))
    assert (out["prevLogIdx"], out["prevLogTerm"]) == (12, 1)
    assert [e[1] for e in out["entries"]] == [13, 14]


@pytest.mark.parametrize(
    "message",
    [
        append(10, 1, [entry(11, 2)], term=2),  # prev term does not match: SyncObj refuses
        append(30, 2, [entry(31, 2)], term=2),  # prev beyond the log: SyncObj asks to go back
        append(20, 2, [entry(21, 2)], term=2),  # nothing after prev: a plain append
        {"type": "request_vote", "term": 3},
        {**append(10, 2, [], term=2), "transmission": "start", "data": b""},
    ],
)
def test_messages_syncobj_must_judge_itself_pass_unchanged(message: dict[str, Any]) -> None:
    log = log_of({i: 2 for i in range(1, 21)})
    assert trimmed(log, message) is message


def test_a_first_conflicting_entry_leaves_the_message_unchanged() -> None:
    log = log_of({i: 1 for i in range(1, 21)})
    message = append(10, 1, [entry(11, 3), entry(12, 3)], term=3)
    assert trimmed(log, message) is message


# -- the reproducer on a real (in-process, never ticking) SyncObj follower ----------------------


def free_address() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"127.0.0.1:{s.getsockname()[1]}"


def last_index_after_resend(transport: type[TCPTransport]) -> tuple[int, int]:
    leader = free_address()
    follower = SyncObj(
        free_address(), [leader], SyncObjConf(autoTick=False), transportClass=transport
    )
    try:
        receive = follower._SyncObj__transport._onMessageReceived
        log = follower._SyncObj__raftLog
        node = TCPNode(leader)
        # index 1 is the no-op every fresh journal starts with (term 0)
        receive(node, append(1, 0, [entry(i, 1) for i in range(2, 11)], term=1))
        receive(node, append(10, 1, [entry(i, 1) for i in range(11, 21)], term=1))
        acknowledged = log[len(log) - 1][1]
        receive(node, append(10, 1, [entry(i, 1) for i in range(11, 16)], term=1))
        return acknowledged, log[len(log) - 1][1]
    finally:
        follower.destroy()


def test_stock_pysyncobj_drops_acknowledged_entries_on_a_shorter_resend() -> None:
    assert last_index_after_resend(TCPTransport) == (20, 15)


def test_our_transport_keeps_them() -> None:
    assert last_index_after_resend(ConflictOnlyTransport) == (20, 20)


# -- the divergent-tail livelock (docs/pysyncobj-divergent-follower-livelock.md) ----------------


def catch_up_rounds(transport: type[TCPTransport], rounds: int = 50) -> int | None:
    """A deposed leader's log (1..20 term 1, then 21..30 written alone in term 2) meets the new
    leader of term 3 (1..20 term 1, 21..100 term 3), which pipelines batches of 10 entries per
    round the way ``__sendAppendEntries`` does and applies each reply the way its
    ``next_node_idx`` handler does. Returns the round in which the follower's log equals the
    leader's, or None if it never does."""
    leader_log = [entry(1, 0)] + [entry(i, 1) for i in range(2, 21)]
    leader_log += [entry(i, 3) for i in range(21, 101)]
    follower = SyncObj(
        free_address(), [free_address()], SyncObjConf(autoTick=False), transportClass=transport
    )
    try:
        receive = follower._SyncObj__transport._onMessageReceived
        log = follower._SyncObj__raftLog
        node = TCPNode(free_address())
        receive(node, append(1, 0, [entry(i, 1) for i in range(2, 21)], term=1))
        receive(node, append(20, 1, [entry(i, 2) for i in range(21, 31)], term=2))
        replies: list[dict[str, Any]] = []
        follower._SyncObj__transport.send = lambda _node, message: replies.append(message)
        next_index = 101  # a new leader starts after its own log
        for round_number in range(1, rounds + 1):
            replies.clear()
            index, sent_one = next_index, False
            while index <= 100 or not sent_one:  # pipelined batches, as the leader sends them
                batch = leader_log[index - 1 : index + 9]
                receive(node, append(index - 1, leader_log[index - 2][2], batch, term=3))
                index, sent_one = index + len(batch), True
            for reply in replies:
                if reply["reset"] or reply["success"]:
                    next_index = reply["next_node_idx"]
            if [log[i][1:] for i in range(len(log))] == [e[1:] for e in leader_log]:
                return round_number
        return None
    finally:
        follower.destroy()


def test_stock_pysyncobj_never_brings_a_divergent_follower_back() -> None:
    assert catch_up_rounds(TCPTransport) is None


def test_our_transport_brings_it_back_in_a_few_rounds() -> None:
    rounds = catch_up_rounds(ConflictOnlyTransport)
    assert rounds is not None and rounds <= 3
