"""The replica: owns the PySyncObj node and bridges its tick thread to asyncio.

Design notes
------------
* Writes: ``submit`` enqueues a command with a callback (never ``sync=True`` on the event loop) and
  awaits an asyncio future resolved through ``call_soon_threadsafe``. On a follower PySyncObj
  forwards the command to the leader and calls back after *this* replica applied it, so the answer
  reflects our own state. A timeout or a failure code means "outcome unknown", never "not done":
  the caller gets ``NotReadyError`` and retries the same (idempotent) command.
* Linearizable reads: a ``barrier`` command goes through the log; once it is applied here, the
  local state holds every write acknowledged before the read began. A partitioned or paused old
  leader cannot commit it, so it answers 503 instead of stale data. Barriers are coalesced: one in
  flight at a time, and requests arriving meanwhile share the *next* one (the running one may have
  started before they arrived, so it would not be enough).
* Watches: the allocator's ``revision`` advances once per state change in log order, so a revision
  names the same state on every replica. The applied-hook (tick thread) appends the agents each
  revision touched to a bounded ``ChangeLog`` and wakes the event loop; watchers share one
  ``asyncio.Event`` (no thread, no queue per watcher). Answers are encoded by ``encoding``, once
  per (since, revision), so thousands of watchers cost one encoding.
  A snapshot installed from the leader jumps the revision without apply calls: the change log
  notices the gap and answers the next watchers with the full state; a light poll wakes watchers.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from overlay_master import allocator
from overlay_master.allocator import AgentRecord, ClusterState, Result
from overlay_master.changes import ChangeLog
from overlay_master.encoding import Encoder, Snapshot
from overlay_master.errors import BindError, NotReadyError
from overlay_master.network import NetworkConfig
from overlay_master.publisher import Publisher
from overlay_master.pysyncobj_compat import FAIL_REASON, SyncObjConf, SyncObjException
from overlay_master.raft_node import DurableSyncObj
from overlay_master.replicated import ReplicatedCluster

log = logging.getLogger(__name__)

BARRIER_TIMEOUT = 3.0
WRITE_TIMEOUT = 5.0  # an in-flight write entry holds back the next batch at most this long
REVISION_POLL = 0.2
READY_MAX_LAG = 50  # committed entries a ready replica may still have to apply
FAIL_NAMES = {v: k for k, v in vars(FAIL_REASON).items() if isinstance(v, int)}


@dataclass(frozen=True)
class RaftSettings:
    """How this replica takes part in Raft (docs/pysyncobj.md, "Configuration we use")."""

    self_address: str
    peers: tuple[str, ...]
    data_dir: Path
    password: str | None
    election_timeout: tuple[float, float] = (0.5, 1.0)
    heartbeat: float = 0.05
    leader_fallback: float = 2.0
    bind_retries: int = 3
    sync: bool = True  # False only for benchmarks (--unsafe-no-fsync): power cuts lose acks


@dataclass
class _Pending:
    command: dict[str, Any]
    future: asyncio.Future[Result]


class Node:
    """One replica of the overlay master."""

    def __init__(self, raft: RaftSettings) -> None:
        self.raft = raft
        self.changes = ChangeLog()
        self.encoding = Encoder(self.changes)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._publisher: Publisher[Snapshot] | None = (
            None  # wakes parked watchers (event-loop side)
        )
        self._seen_revision = -1
        self.admitted = False  # set by serve once the log holds networks and drift is known
        self.drift: list[str] = []  # how the config file differs from the log (serve sets it)
        self._writes: list[_Pending] = []
        self._writes_inflight: object | None = None
        self._snapshot: tuple[ClusterState, Snapshot] | None = None
        self._queued: asyncio.Future[int] | None = None
        self._inflight: asyncio.Future[int] | None = None
        self._poller: asyncio.Task[None] | None = None
        self.cluster = ReplicatedCluster(self._on_applied)
        raft.data_dir.mkdir(parents=True, exist_ok=True)
        # durable group commit, pre-vote, and the conflict-only transport (raft_node.py)
        self.syncobj = DurableSyncObj(
            raft.self_address, list(raft.peers), self._conf(), [self.cluster], sync=raft.sync
        )

    def _conf(self) -> SyncObjConf:
        raft = self.raft
        return SyncObjConf(
            bindAddress=raft.self_address,
            password=raft.password,
            journalFile=str(raft.data_dir / "raft.journal"),
            fullDumpFile=str(raft.data_dir / "raft.dump"),
            appendEntriesUseBatch=False,
            appendEntriesPeriod=raft.heartbeat,
            autoTickPeriod=0.02,
            raftMinTimeout=raft.election_timeout[0],
            raftMaxTimeout=raft.election_timeout[1],
            leaderFallbackTimeout=raft.leader_fallback,
            connectionTimeout=3.5,
            connectionRetryTime=0.25,  # a restarted peer is reconnected within 0.25 s
            commandsWaitLeader=True,
            commandsQueueSize=10_000,
            logCompactionSplit=True,
            dynamicMembershipChange=False,
            maxBindRetries=raft.bind_retries,
            bindRetryTime=0.5,
        )

    # -- life cycle -------------------------------------------------------------------------------

    def wait_bound(self) -> None:
        try:
            self.syncobj.waitBinded()
        except SyncObjException as e:
            self.syncobj.destroy()
            raise BindError(
                f"cannot bind the Raft port {self.raft.self_address}: is another process using it?"
            ) from e

    def wait_caught_up(self, timeout: float) -> bool:
        """Wait until this replica applied everything the leader had committed when it first
        heard from it (PySyncObj's ``isReady``). Without a quorum, settle for the local journal
        replayed up to the commit index it recorded, and say so by returning False."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.syncobj.isReady():
                return True
            time.sleep(0.02)
        return False

    def attach(self, loop: asyncio.AbstractEventLoop) -> None:
        """Called from the event loop at start-up: from now on watchers are woken."""
        self._loop = loop
        self._publisher = Publisher(loop, self.revision, self.snapshot)
        self._poller = loop.create_task(self._poll_revision())

    def close(self) -> None:
        if self._poller is not None:
            self._poller.cancel()
        self.syncobj.destroy_synchronous()

    # -- tick-thread side -------------------------------------------------------------------------

    def _on_applied(self, state: ClusterState, command: Any, result: Result) -> None:
        if not self.changes.applied(state.revision, result):
            return
        loop = self._loop
        if loop is not None:
            loop.call_soon_threadsafe(self._wake)

    # -- event-loop side --------------------------------------------------------------------------

    def _wake(self) -> None:
        if self._publisher is not None:
            self._publisher.publish(self.revision)

    async def _poll_revision(self) -> None:
        """Catch revision jumps that bypass apply (a snapshot installed from the leader)."""
        while True:
            await asyncio.sleep(REVISION_POLL)
            revision = self.revision
            if revision != self._seen_revision:
                self._seen_revision = revision
                self._wake()

    async def submit(self, command: dict[str, Any], timeout: float) -> Result:
        """Commit a write and return its result as applied on this replica.

        Writes that arrive while another log entry of ours is in flight are coalesced into one
        ``batch`` entry: the per-entry Raft cost (encryption, pickling, journal, round trip) is
        then shared. An idle replica sends a write at once, so a lone client waits no longer."""
        loop = asyncio.get_running_loop()
        pending = _Pending(command, loop.create_future())
        self._writes.append(pending)
        if self._writes_inflight is None:
            self._flush_writes()
        try:
            return await asyncio.wait_for(asyncio.shield(pending.future), timeout)
        except TimeoutError:
            if pending in self._writes:  # never sent: nobody is waiting for it any more
                self._writes.remove(pending)
            raise NotReadyError(
                f"no answer from the Raft log within {timeout:g} s (no quorum or leader change); "
                "the outcome is unknown"
            ) from None

    def _flush_writes(self) -> None:
        loop = self._loop or asyncio.get_running_loop()
        batch = self._writes[: allocator.MAX_BATCH]
        del self._writes[: len(batch)]
        marker = object()  # identifies this entry: its callback and its timeout race
        self._writes_inflight = marker
        single = len(batch) == 1
        command = batch[0].command if single else allocator.batch(p.command for p in batch)

        def done(result: Result, error: int) -> None:
            loop.call_soon_threadsafe(self._writes_done, marker, batch, result, error)

        self.cluster.apply(command, callback=done)
        loop.call_later(WRITE_TIMEOUT, self._writes_done, marker, batch, None, -1)

    def _writes_done(
        self, marker: object, batch: list[_Pending], result: Result | None, error: int
    ) -> None:
        if self._writes_inflight is not marker:
            return  # already settled (by its timeout or its callback)
        self._writes_inflight = None
        if result is None or error != FAIL_REASON.SUCCESS:
            results: list[Result | None] = [None] * len(batch)
        elif len(batch) == 1:
            results = [result]
        elif isinstance(result, allocator.Batched) and len(result.results) == len(batch):
            results = list(result.results)
        else:
            results = [None] * len(batch)
        for pending, one in zip(batch, results, strict=True):
            if pending.future.done():
                continue
            if one is None:
                pending.future.set_exception(NotReadyError(_fail_text(error)))
                pending.future.exception()  # retrieved: its waiter may have given up already
            else:
                pending.future.set_result(one)
        if self._writes:
            self._flush_writes()

    async def sync(self, timeout: float) -> int:
        """A linearizable point: returns once every write acknowledged before the call is applied
        here. Raises ``NotReadyError`` when the log cannot commit (no quorum, deposed leader)."""
        assert self._loop is not None, "attach() first"
        if self._queued is None:
            self._queued = self._loop.create_future()
        future = self._queued
        if self._inflight is None:
            self._launch_barrier()
        try:
            return await asyncio.wait_for(asyncio.shield(future), timeout)
        except TimeoutError:
            raise NotReadyError(
                f"could not confirm the latest state with a quorum within {timeout:g} s"
            ) from None

    def _launch_barrier(self) -> None:
        loop = self._loop
        assert loop is not None
        future, self._queued = self._queued, None
        assert future is not None
        self._inflight = future

        def done(result: Result, error: int) -> None:
            loop.call_soon_threadsafe(self._barrier_done, future, result, error)

        self.cluster.apply(allocator.barrier(), callback=done)
        loop.call_later(BARRIER_TIMEOUT, self._barrier_done, future, None, -1)

    def _barrier_done(self, future: asyncio.Future[int], result: Result | None, error: int) -> None:
        if self._inflight is not future:
            return  # already settled (by its timeout or its callback)
        self._inflight = None
        if not future.done():
            if isinstance(result, allocator.Synced) and error == FAIL_REASON.SUCCESS:
                future.set_result(result.revision)
            else:
                future.set_exception(NotReadyError(_fail_text(error)))
                future.exception()  # mark retrieved: nobody may be waiting any more
        if self._queued is not None:
            self._launch_barrier()

    async def wait_revision_above(self, since: int, timeout: float) -> None:
        """Until a revision above ``since`` is published to watchers (publisher.py)."""
        if self._publisher is not None:
            await self._publisher.wait_above(since, timeout)

    # -- reads ------------------------------------------------------------------------------------

    def watch_snapshot(self, since: int) -> Snapshot:
        """What a watch at ``since`` is answered from: the published snapshot (publisher.py),
        or the live one when the client is ahead of it."""
        if self._publisher is None:
            return self.snapshot()
        return self._publisher.answer_from(since, self.snapshot)

    @property
    def revision(self) -> int:
        return self.cluster.state.revision

    def snapshot(self) -> Snapshot:
        """The state as of now; built once per revision (records are immutable values)."""
        with self.cluster.lock:
            state = self.cluster.state
            cached = self._snapshot
            if cached is not None and cached[0] is state and cached[1].revision == state.revision:
                return cached[1]
            snap = Snapshot(
                state.network,
                state.revision,
                list(state.agents.values()),
                dict(state.containers),
                dict(state.replicas),
            )
            self._snapshot = (state, snap)
            return snap

    @property
    def network(self) -> NetworkConfig | None:
        return self.cluster.state.network

    def record(self, ip: str) -> tuple[NetworkConfig | None, AgentRecord | None]:
        with self.cluster.lock:
            state = self.cluster.state
            return state.network, state.agents.get(ip)

    def pools(self) -> ClusterState:
        """The live state, for metrics only (counts are read without the lock; a torn read is a
        momentarily off-by-one gauge)."""
        return self.cluster.state

    # -- status -----------------------------------------------------------------------------------

    @property
    def self_address(self) -> str:
        return self.raft.self_address

    @property
    def peers(self) -> tuple[str, ...]:
        return self.raft.peers

    def alive(self) -> bool:
        """Liveness: the Raft tick thread runs (without it nothing is applied or answered)."""
        return bool(self.syncobj.tick_thread_alive())

    def status(self) -> dict[str, Any]:
        for _ in range(5):
            try:
                return dict(self.syncobj.getStatus())
            except RuntimeError:  # a dict changed size under us on the tick thread; try again
                continue
        return {}

    def leader(self) -> str | None:
        leader = self.syncobj._getLeader()
        return None if leader is None else str(leader.id)

    def role(self, status: dict[str, Any] | None = None) -> str:
        state = (status if status is not None else self.status()).get("state", -1)
        return {0: "follower", 1: "candidate", 2: "leader"}.get(state, "unknown")

    def ready(self) -> tuple[bool, str]:
        if not self.syncobj.tick_thread_alive():
            return False, "the Raft tick thread is not running"
        if not self.syncobj.isReady():
            return False, "not caught up with the replicated log yet"
        if self.leader() is None or not self.syncobj.hasQuorum:
            return False, "no leader or no quorum in view"
        status = self.status()
        lag = (status.get("leader_commit_idx") or 0) - (status.get("last_applied") or 0)
        if lag > READY_MAX_LAG:
            return False, f"{lag} committed log entries behind the leader"
        if self.cluster.state.network is None:
            return False, "no network config committed yet"
        if not self.admitted:
            return False, "start-up check of the config file against the log not finished"
        return True, "ready"


def _fail_text(error: int) -> str:
    if error == -1:
        return "the replicated log did not confirm in time (no quorum?); the outcome is unknown"
    name = FAIL_NAMES.get(error, str(error))
    return f"the replicated log answered {name}; the outcome is unknown, retry the same request"
