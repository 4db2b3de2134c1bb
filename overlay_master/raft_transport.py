"""PySyncObj's TCP transport, plus follower-side fixes for two PySyncObj log-replication bugs.

Design notes
------------
* The bug (pysyncobj 0.3.17, ``SyncObj.__onMessageReceived``, append_entries): when a follower
  holds *any* entries after the message's ``prevLogIdx`` it deletes all of them and appends the
  message's entries, without comparing terms. Raft (§5.3, receiver rule 3) only truncates from
  the first *conflicting* entry. The leader makes such messages all the time: a late success
  reply moves its ``nextIndex`` back, so the same entries are sent again (logged as
  ``CRITICAL truncating already-applied log entries``). While the resent batch is shorter than
  what the follower already acknowledged (batches are capped at 64 KiB), the follower lacks
  entries the leader counts as stored there, and a leader crash in that window can lose a
  committed write. Write-up and reproducer: docs/pysyncobj-nonconflict-truncation.md.
* The workaround rewrites an incoming append_entries message, before SyncObj sees it, into the
  equivalent message that carries only what the follower does not already have:
  - if the follower's last entry has the message's term, it came from this leader, so by the
    Log Matching property the follower's whole log equals the leader's up to there: the message
    becomes "prev = that last entry, entries = those after it" (the follower then acknowledges
    its whole log, which is true);
  - otherwise the entries that match the follower's log (same index and term) are skipped, so
    SyncObj only truncates from the first real conflict. If all of them match and the follower
    holds more, the message is left as it is (we cannot make SyncObj acknowledge less than it
    keeps; this needs a leftover tail from an older term and is rare).
  Messages whose ``prevLogIdx`` the follower cannot confirm, snapshot transfers, and everything
  that is not append_entries pass through untouched, so SyncObj's own checks still decide.
* The second bug (a livelock): a follower whose log ends with entries the leader does not have
  (a deposed leader's uncommitted tail) never catches up while the leader is more than one
  batch ahead. The leader pipelines several batches per round; the follower answers the first
  with "mismatch at prevLogIdx" (``nextIndex`` goes back one) and the later ones, whose
  ``prevLogIdx`` lies beyond its log, with "resend from my end + 1", which moves ``nextIndex``
  forward again: the walk back never gets anywhere (measured: a replica stuck for minutes after
  a 5 s partition, serving 503). Write-up: docs/pysyncobj-divergent-follower-livelock.md.
  The workaround: on a mismatch the follower asks for everything after its *commit index* (those
  entries match the leader's by definition), and while it knows it diverges from this leader's
  term it answers the pipelined messages the same way, so every answer of a round agrees.
  SyncObj builds the answers itself; we only rewrite what it receives: a mismatch at
  ``commit + 1`` (``prevLogTerm=-1``, no entries) makes it answer "resend from commit + 1".
  Lowering the leader's ``nextIndex`` is always safe in Raft; it only costs a resend.
* Reads SyncObj's private ``__raftLog`` and ``__raftCommitIndex`` (pysyncobj is pinned to
  0.3.17). Runs on the tick thread, like every message handler, so nothing changes underneath.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from overlay_master.pysyncobj_compat import TCPTransport

Entry = tuple[bytes, int, int]  # (command, index, term), as PySyncObj stores them
MessageCallback = Callable[[Any, dict[str, Any]], None]


class ConflictOnlyTransport(TCPTransport):  # type: ignore[misc]
    """``TCPTransport`` whose follower side only truncates real conflicts and walks back from
    a divergent tail in one step (see the module notes)."""

    def setOnMessageReceivedCallback(self, callback: MessageCallback | None) -> None:
        if callback is None:
            super().setOnMessageReceivedCallback(None)
            return
        appends = AppendFilter()

        def receive(node: Any, message: dict[str, Any]) -> None:
            syncobj = self._syncObj
            log, commit = syncobj._SyncObj__raftLog, syncobj._SyncObj__raftCommitIndex
            callback(node, appends.rewrite(log, commit, message))

        super().setOnMessageReceivedCallback(receive)


class AppendFilter:
    """Rewrites a follower's incoming append_entries; remembers a divergent tail per term."""

    def __init__(self) -> None:
        self.conflict_term: int | None = None  # term of a leader we know we diverge from

    def rewrite(self, log: Any, commit: int, message: dict[str, Any]) -> dict[str, Any]:
        if message.get("type") != "append_entries" or "entries" not in message:
            return message
        if "transmission" in message or len(log) == 0:
            return message
        first, last = log[0][1], log[len(log) - 1][1]
        prev, term = message["prevLogIdx"], message["term"]
        if self.conflict_term != term:
            self.conflict_term = None
        if first <= prev <= last and log[prev - first][2] != message["prevLogTerm"]:
            self.conflict_term = term
            return back_to_commit(first, last, commit, message)
        if prev > last:
            if self.conflict_term == term:
                return back_to_commit(first, last, commit, message)
            return message
        if prev >= first:
            self.conflict_term = None  # prev matched: SyncObj truncates the conflict now
        return trimmed(log, message)


def back_to_commit(first: int, last: int, commit: int, message: dict[str, Any]) -> dict[str, Any]:
    """A message SyncObj answers with "mismatch, resend from commit + 1".

    Entries up to the commit index are committed, so they match the leader's; ours after it
    may not. SyncObj answers a mismatch at ``prevLogIdx`` with ``next_node_idx = prevLogIdx``,
    so a bogus term at ``commit + 1`` makes the leader resend from there."""
    target = commit + 1
    if not first <= target <= last or target >= message["prevLogIdx"] >= first:
        return message
    return {**message, "prevLogIdx": target, "prevLogTerm": -1, "entries": []}


def trimmed(log: Any, message: dict[str, Any]) -> dict[str, Any]:
    """``message`` without the entries ``log`` already holds (see the module notes)."""
    if message.get("type") != "append_entries" or "entries" not in message:
        return message
    if "transmission" in message or len(log) == 0:
        return message
    first, last = log[0][1], log[len(log) - 1][1]
    prev, entries = message["prevLogIdx"], message["entries"]
    if prev >= last or prev < first or log[prev - first][2] != message["prevLogTerm"]:
        return message  # nothing after prev here, or SyncObj will refuse it anyway
    if log[len(log) - 1][2] == message["term"]:
        keep = [e for e in entries if e[1] > last]
        return {**message, "prevLogIdx": last, "prevLogTerm": message["term"], "entries": keep}
    for position, entry in enumerate(entries):
        index = entry[1]
        if index > last or log[index - first][2] != entry[2]:
            if position == 0:
                return message
            before = entries[position - 1]
            return {
                **message,
                "prevLogIdx": before[1],
                "prevLogTerm": before[2],
                "entries": entries[position:],
            }
    return message
