"""Which agents each revision touched: what lets a watch answer with a delta instead of the state.

The allocator's ``revision`` advances once per state change, in log order, so a revision names the
same state on every replica. ``ChangeLog`` keeps, for a bounded window of the latest revisions, the
agent IPs each one touched, and what of them: their records (``RECORDS``: what agents watch) or
their container reports (``CONTAINERS``: what the Networking page watches too). The window is contiguous: a revision that does not follow the last one
(a snapshot installed from the leader jumps the revision without apply calls) empties it, and
watchers older than the window get the full state instead of a delta.

The tick thread records while the event loop reads: both hold ``_lock`` (an unlocked read met
"deque mutated during iteration" in the 8,190-agent storm, and answered a watcher 500).
"""

from __future__ import annotations

import itertools
import threading
from collections import deque

from overlay_master import allocator
from overlay_master.allocator import Result

CHANGE_LOG_CAPACITY = 20_000
RECORDS, CONTAINERS = 1, 2  # what a revision changed about the agents it touched (bit flags)


class ChangeLog:
    """Which agents each revision touched, for the last ``capacity`` revisions (contiguous)."""

    def __init__(self, capacity: int = CHANGE_LOG_CAPACITY) -> None:
        self.capacity = capacity
        self.entries: deque[tuple[int, tuple[str, ...], int]] = deque()
        self.floor: int | None = None  # every revision after floor is in entries
        self.last: int | None = None
        self._lock = threading.Lock()

    def record(self, revision: int, ips: tuple[str, ...], kind: int = RECORDS) -> None:
        with self._lock:
            self._record(revision, ips, kind)

    def _record(self, revision: int, ips: tuple[str, ...], kind: int) -> None:
        if self.last is None or revision != self.last + 1:
            self.entries.clear()
            self.floor = revision - 1
        self.entries.append((revision, ips, kind))
        self.last = revision
        if len(self.entries) > self.capacity:
            self.floor = self.entries.popleft()[0]

    def applied(self, revision: int, result: Result) -> bool:
        """Record what an applied command changed; ``revision`` is the state's revision after it.

        Returns whether the revision moved (watchers should be woken)."""
        if revision == self.last:
            return False
        for changed, ips, kind in changes(result):
            self.record(changed, ips, kind)
        if revision != self.last:  # a jump we cannot explain: start over
            self.record(revision, ())
        return True

    def touched_since(self, since: int, current: int, kind: int = RECORDS) -> list[str] | None:
        """Agents whose ``kind`` changed after ``since`` up to ``current``; None if we cannot
        tell."""
        with self._lock:
            if self.floor is None or self.last != current or since < self.floor:
                return None
            tail = itertools.islice(self.entries, since - self.floor, None)
            return list(dict.fromkeys(ip for _, ips, k in tail if k & kind for ip in ips))


def changes(result: Result) -> list[tuple[int, tuple[str, ...], int]]:
    """(revision, agents touched, what of them) for every change a result reports, in order."""
    if isinstance(result, allocator.Batched):
        return [change for r in result.results for change in changes(r)]
    if isinstance(result, allocator.Registered | allocator.StatusRecorded) and result.changed:
        return [(result.revision, (result.agent.ip,), RECORDS)]
    if isinstance(result, allocator.Deleted) and result.ips:
        return [(result.revision, result.ips, RECORDS | CONTAINERS)]
    if isinstance(result, allocator.NetworkChanged) and result.changed:
        # a deleted network takes its containers along: the containers' watchers re-read them
        return [(result.revision, result.agents, RECORDS | CONTAINERS)]
    if isinstance(result, allocator.ContainersReported) and result.changed:
        return [(result.revision, (result.agent,), CONTAINERS)]
    if isinstance(result, allocator.Configured | allocator.ReplicaAnnounced) and result.changed:
        return [(result.revision, (), RECORDS)]
    return []
