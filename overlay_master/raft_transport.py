"""PySyncObj's TCP transport, plus a fix for followers that truncate entries that do not conflict.

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
* Reads SyncObj's private ``__raftLog`` (pysyncobj is pinned to 0.3.17). Runs on the tick thread,
  like every message handler, so the log cannot change underneath.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pysyncobj.transport import TCPTransport

Entry = tuple[bytes, int, int]  # (command, index, term), as PySyncObj stores them
MessageCallback = Callable[[Any, dict[str, Any]], None]


class ConflictOnlyTransport(TCPTransport):  # type: ignore[misc]
    """``TCPTransport`` whose follower side never truncates matching log entries."""

    def setOnMessageReceivedCallback(self, callback: MessageCallback | None) -> None:
        if callback is None:
            super().setOnMessageReceivedCallback(None)
            return

        def receive(node: Any, message: dict[str, Any]) -> None:
            callback(node, trimmed(self._syncObj._SyncObj__raftLog, message))

        super().setOnMessageReceivedCallback(receive)


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
