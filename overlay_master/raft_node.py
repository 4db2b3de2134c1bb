"""PySyncObj's ``SyncObj`` with durable group commit and pre-vote (the pinned library unchanged).

Design notes
------------
* What must be on disk before a message leaves (Raft §5, Ongaro's thesis §3.8): a follower's
  answer to ``append_entries`` (``next_node_idx``) vouches for the entries it appended; a vote
  (``response_vote``) and a vote request (``request_vote``, which carries the candidate's own
  vote) vouch for the term and the vote in ``.meta``. ``GroupCommitTransport.send`` holds those
  messages (and, to keep the order per peer, everything sent after them) while the journal
  (``durable_journal.DurableJournal``) has anything unsynced, and ``release`` syncs once and then
  sends them all: one ``fdatasync`` covers every entry and every answer of the step.
* Where ``release`` runs, and why that is sound: (1) at the start of every tick, before
  PySyncObj's own ``_onTick``; the previous tick ended in ``poll``, where every incoming
  ``append_entries`` and vote was handled, so their answers go out right after one sync. The
  leader's commit rule, which counts the leader itself, runs next in the same tick, so the
  leader only ever counts entries it has synced. (2) As the transport's on-tick callback, the
  last step before ``poll``: the leader's entries appended in this tick are synced while the
  followers sync their copies, not after. Entries appended on the leader inside ``poll`` (the
  no-op of a new term) are covered by (1) before the commit rule sees them. Messages that vouch
  for nothing (``append_entries`` itself, command forwards and their answers, pre-votes) are not
  held: Raft lets a leader send entries before its own write is durable as long as it does not
  count itself (thesis §10.2.1).
* Nothing is sent from other threads: PySyncObj does all transport work on the tick thread, so
  ``held`` needs no lock.
* ``sync=False`` (``--unsafe-no-fsync``, benchmarks only) keeps the holding and the writes but
  skips every ``fsync``: an acknowledged entry is then in the page cache, safe from ``kill -9``
  and lost with the power.
* The snapshot loaded at start-up goes through ``DurableJournal.begin_reload``/``end_reload`` (a
  crash between a new snapshot and the journal's rewrite must not drop the journal's tail); the
  load is done here, on the first tick, instead of inside PySyncObj's ``_onTick``, so nothing
  else touches the journal in between.
"""

from __future__ import annotations

import os
from typing import Any

from overlay_master import durable_journal
from overlay_master.durable_journal import DurableJournal, JournalPath
from overlay_master.prevote import ElectionGuard
from overlay_master.pysyncobj_compat import SyncObj, SyncObjConf, SyncObjConsumer
from overlay_master.raft_transport import ConflictOnlyTransport

HELD = frozenset({"next_node_idx", "response_vote", "request_vote", "term_notice"})


class GroupCommitTransport(ConflictOnlyTransport):
    """Holds acknowledgements and votes until the journal is synced; filters elections."""

    def __init__(self, syncObj: Any, selfNode: Any, otherNodes: Any) -> None:
        self.held: list[tuple[Any, dict[str, Any]]] = []
        self.journal: Any = syncObj._SyncObj__raftLog
        self.guard = ElectionGuard(syncObj, self.send)
        super().__init__(syncObj, selfNode, otherNodes)

    def send(self, node: Any, message: dict[str, Any]) -> bool:
        if self.held or (message.get("type") in HELD and self.journal.dirty):
            self.held.append((node, message))
            return True
        return bool(super().send(node, message))

    def release(self) -> None:
        """Sync what the journal holds, then send what waited for it."""
        self.journal.flush()
        held, self.held = self.held, []
        for node, message in held:
            super().send(node, message)

    def setOnMessageReceivedCallback(self, callback: Any) -> None:
        if callback is None:
            super().setOnMessageReceivedCallback(None)
            return

        def receive(node: Any, message: dict[str, Any]) -> None:
            seen = self.guard.receive(node, message)
            if seen is not None:
                callback(node, seen)

        super().setOnMessageReceivedCallback(receive)

    def _onTick(self) -> None:
        super()._onTick()
        self.release()


class DurableSyncObj(SyncObj):  # type: ignore[misc]
    """A ``SyncObj`` whose journal is durable before it acknowledges (see the module notes)."""

    def __init__(
        self,
        self_address: str,
        peers: list[str],
        conf: SyncObjConf,
        consumers: list[SyncObjConsumer],
        sync: bool = True,
    ) -> None:
        durable_journal.install()
        conf.journalFile = JournalPath(conf.journalFile, sync)
        super().__init__(
            self_address, peers, conf, consumers=consumers, transportClass=GroupCommitTransport
        )

    @property
    def journal(self) -> DurableJournal:
        journal: DurableJournal = self._SyncObj__raftLog
        return journal

    def _onTick(self, timeToWait: float = 0.0) -> None:
        transport: GroupCommitTransport = self._SyncObj__transport
        transport.release()
        if self._SyncObj__needLoadDumpFile:
            self._load_snapshot()
        transport.guard.before_tick()
        super()._onTick(timeToWait)

    def _load_snapshot(self) -> None:
        dump = self.conf.fullDumpFile
        if dump is not None and os.path.isfile(dump):
            self.journal.begin_reload()
            try:
                self._SyncObj__loadDumpFile(clearJournal=False)
            finally:
                self.journal.end_reload()
        self._SyncObj__needLoadDumpFile = False
