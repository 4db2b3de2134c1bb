"""Faults on a seeded schedule: kill -9 (leader, follower, all three), SIGSTOP/SIGCONT of the
leader, symmetric and one-way partitions, a lost journal tail on one replica (journal cut back),
and power cuts of two masters and of all three (killed, everything unsynced dropped by their
power-cut file systems, restarted).

The first faults of a run are every kind once, in a seeded order; the rest are drawn at random.
Before each fault the nemesis waits, with a deadline, until the cluster has recovered from the
last one: every replica ready and caught up with the commit index seen when the wait began. So
faults never stack (two stacked journal cuts would lose synced data on a majority, which no
replication can survive; a power cut loses only unsynced data and may hit any number of
masters). Hold times come from the seeded RNG.

The nemesis runs on its own thread with blocking calls; it only touches processes it started
(by PID) and nft rules inside the replica namespaces.
"""

from __future__ import annotations

import json
import logging
import random
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx

from tests.chaos import journal
from tests.chaos.cluster import NetnsCluster
from tests.chaos.topology import Topology
from tests.harness.cluster import Replica

KINDS = (
    "kill_leader",
    "kill_follower",
    "kill_all",
    "pause_leader",
    "partition_leader",
    "oneway_partition",
    "power_loss",
    "power_cut_two",
    "power_cut_all",
)
RECOVERY_DEADLINE = 60.0
APPLIED = "overlay_master_raft_applied_index"
COMMITTED = "overlay_master_raft_commit_index"
Undo = Callable[[], None]
log = logging.getLogger(__name__)


@dataclass
class Fault:
    kind: str
    target: list[int]
    start: float
    end: float = 0.0
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass
class Nemesis:
    cluster: NetnsCluster
    topology: Topology
    seed: int
    clock_zero: float
    log_path: Path
    faults: list[Fault] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    recovery: list[float] = field(default_factory=list)  # seconds until recovered, per fault
    stop: threading.Event = field(default_factory=threading.Event)
    pending: Undo | None = None  # how to undo the fault in place
    kinds: tuple[str, ...] = KINDS

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)

    # -- schedule ---------------------------------------------------------------------------------

    def schedule(self) -> list[str]:
        first = list(self.kinds)
        self.rng.shuffle(first)
        return first

    def run(self, until: float) -> None:
        """Inject faults until monotonic time ``until`` (or ``stop``); the thread's target.

        The fault in progress at ``until`` is left in place: ``heal`` undoes it, so the heal
        time measures recovery from a real fault, not from a quiet cluster."""
        try:
            self._run(until)
        except Exception as e:  # the thread's top: report it as a failed run, never lose it
            log.exception("nemesis failed")
            self.problems.append(f"the nemesis broke: {type(e).__name__}: {e}")

    def _run(self, until: float) -> None:
        queue = self.schedule()
        while not self.stop.is_set() and time.monotonic() < until:
            self.wait_recovered()
            if self._hold(self.rng.uniform(1.0, 3.0)):
                break
            kind = queue.pop(0) if queue else self.rng.choice(self.kinds)
            fault = Fault(kind, [], self._now())
            self.pending = getattr(self, kind)(fault)
            self.faults.append(fault)
            if self._hold(max(0.0, min(fault.detail["hold"], until - time.monotonic()))):
                break
            if time.monotonic() >= until:
                break
            self._undo()

    def heal(self) -> None:
        """Undo everything: no partitions, no paused or dead replicas."""
        self._undo()
        self.topology.heal()
        self.cluster.resume_all()
        for replica in self.cluster.replicas:
            if not replica.alive:
                self.cluster.start(replica)

    def _undo(self) -> None:
        undo, self.pending = self.pending, None
        if undo is None:
            return
        undo()
        fault = self.faults[-1]
        fault.end = self._now()
        with self.log_path.open("a") as f:
            f.write(json.dumps(asdict(fault)) + "\n")

    def _now(self) -> float:
        return time.monotonic() - self.clock_zero

    def _hold(self, seconds: float) -> bool:
        """The schedule's own hold time; True if the run is being stopped."""
        return self.stop.wait(seconds)

    # -- observations -----------------------------------------------------------------------------

    def leader(self, timeout: float = 10.0) -> Replica:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for replica in self.cluster.replicas:
                if replica.alive and self.cluster.role(replica) == "leader":
                    return replica
            self.stop.wait(0.05)
        return self.rng.choice(self.cluster.replicas)  # none in view: hit any replica

    def followers(self, leader: Replica) -> list[Replica]:
        return [r for r in self.cluster.replicas if r is not leader]

    def wait_recovered(self) -> None:
        started = time.monotonic()
        deadline = started + RECOVERY_DEADLINE
        target: float | None = None
        while time.monotonic() < deadline and not self.stop.is_set():
            try:
                metrics = [self.cluster.metrics(r) for r in self.cluster.replicas]
                ready = all(self.cluster._ready(r) for r in self.cluster.replicas)
            except (httpx.HTTPError, AssertionError, OSError):
                metrics, ready = [], False
            if ready:
                if target is None:
                    target = max(m.get(COMMITTED, 0.0) for m in metrics)
                if all(m.get(APPLIED, 0.0) >= target for m in metrics):
                    if self.faults:
                        self.recovery.append(time.monotonic() - started)
                    return
            self.stop.wait(0.1)
        if not self.stop.is_set():
            self.problems.append(
                f"cluster not recovered {RECOVERY_DEADLINE:g} s after fault "
                f"{self.faults[-1].kind if self.faults else '(start)'} (target applied index "
                f"{target}): " + "; ".join(self.cluster.describe())
            )

    # -- faults: each injects, sets detail["hold"] and returns how to undo it ---------------------

    def kill_leader(self, fault: Fault) -> Undo:
        return self._kill(fault, [self.leader()])

    def kill_follower(self, fault: Fault) -> Undo:
        return self._kill(fault, [self.rng.choice(self.followers(self.leader()))])

    def kill_all(self, fault: Fault) -> Undo:
        return self._kill(fault, list(self.cluster.replicas))

    def _kill(self, fault: Fault, victims: list[Replica]) -> Undo:
        fault.target = [r.index + 1 for r in victims]
        for replica in victims:
            self.cluster.kill(replica, signal.SIGKILL)
        fault.detail["hold"] = round(self.rng.uniform(0.3, 3.0), 2)
        return lambda: self._restart(victims)

    def _restart(self, victims: list[Replica]) -> None:
        for replica in victims:
            self.cluster.start(replica)

    def pause_leader(self, fault: Fault) -> Undo:
        """SIGSTOP for longer than the election timeout (0.5-1 s)."""
        leader = self.leader()
        fault.target = [leader.index + 1]
        fault.detail["hold"] = round(self.rng.uniform(1.5, 4.0), 2)
        self.cluster.kill(leader, signal.SIGSTOP)
        return lambda: self.cluster.kill(leader, signal.SIGCONT)

    def partition_leader(self, fault: Fault) -> Undo:
        """The leader loses both peers (both directions); clients still reach everyone."""
        leader = self.leader()
        fault.target = [leader.index + 1]
        for peer in self.followers(leader):
            self.topology.block(leader.index, peer.index, inbound=True, outbound=True)
        fault.detail["hold"] = round(self.rng.uniform(2.0, 6.0), 2)
        return self.topology.heal

    def oneway_partition(self, fault: Fault) -> Undo:
        """Packets from the leader to one follower are dropped; the reverse direction flows."""
        leader = self.leader()
        follower = self.rng.choice(self.followers(leader))
        fault.target = [leader.index + 1, follower.index + 1]
        self.topology.block(leader.index, follower.index, inbound=False, outbound=True)
        fault.detail["hold"] = round(self.rng.uniform(2.0, 6.0), 2)
        return self.topology.heal

    def power_cut_two(self, fault: Fault) -> Undo:
        return self._power_cut(fault, self.rng.sample(self.cluster.replicas, 2))

    def power_cut_all(self, fault: Fault) -> Undo:
        return self._power_cut(fault, list(self.cluster.replicas))

    def _power_cut(self, fault: Fault, victims: list[Replica]) -> Undo:
        """Kill -9, then drop everything the victims had not synced; restart after the hold."""
        fault.target = sorted(r.index + 1 for r in victims)
        for replica in victims:
            self.cluster.power_off(replica)
        for replica in victims:
            self.cluster.power_cut(replica)
        fault.detail["hold"] = round(self.rng.uniform(0.3, 3.0), 2)
        return lambda: self._restart(victims)

    def power_loss(self, fault: Fault) -> Undo:
        """One replica (leader or follower) loses the tail of its journal, synced or not (a
        disk that lost writes).

        The records it loses must still be on both other replicas, or this would be a double
        fault: wait (bounded) until both have applied past its last record before cutting."""
        victim = self.rng.choice(self.cluster.replicas)
        fault.target = [victim.index + 1]
        self.cluster.kill(victim, signal.SIGKILL)
        records = journal.records(victim.data_dir / "raft.journal")
        last = records[-1].idx
        others = [r for r in self.cluster.replicas if r is not victim]
        if self._applied_past(others, last, timeout=15.0):
            cut = journal.power_loss(victim.data_dir, drop=self.rng.randint(1, 400))
            fault.detail.update(asdict(cut))
        else:
            fault.detail["skipped_cut"] = f"peers did not apply index {last} in time"
        fault.detail["hold"] = round(self.rng.uniform(0.3, 2.0), 2)
        return lambda: self._restart([victim])

    def _applied_past(self, replicas: list[Replica], index: int, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not self.stop.is_set():
            try:
                if all(self.cluster.metrics(r).get(APPLIED, 0.0) >= index for r in replicas):
                    return True
            except httpx.HTTPError:
                pass
            self.stop.wait(0.1)
        return False
