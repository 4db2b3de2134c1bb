"""The reconcile loop: register -> long-poll watch | periodic timer -> desired -> observe -> plan
-> apply, plus status reporting to the masters.

Design notes
- Level-triggered. Every pass recomputes the desired objects from the *whole* local copy of the
  cluster state and compares them with a fresh observation of the kernel; the watch only decides
  *when* to run a pass, never *what* to change. So a missed delta, a restart or a hand-made change
  is repaired by the next pass (at the latest after ``resync`` seconds), and departed agents are
  removed instead of leaking (dcos-net never deleted anything).
- A pass is: observe, plan, apply in the plan's order, then observe and plan again to verify; if
  the kernel reacted (e.g. deleting an address dropped routes through it) another round runs, up to
  ``MAX_ROUNDS``. "Converged" means the verification plan was empty: that is what ``/readyz``
  reports, for the revision the pass was computed from. A pass with nothing to do writes nothing.
- Docker (if a daemon is configured) goes first in a pass: its networks own ``d-<name>`` together
  with the agent, and the order that keeps the two from fighting is explained in docker.py.
- Failures are contained: an operation that fails is recorded against the overlay it serves
  (``STATUS_FAILED`` + error) and the rest of the plan still runs; the next pass retries.
- Masters unreachable: no new state arrives, so passes keep the kernel exactly as the last state
  says; nothing is torn down for lack of an answer. Our own record missing from the state (deleted
  on the master) is the same: the kernel is left alone and the agent reports not ready.
- All kernel work runs on ONE worker thread (the ``Kernel`` is not thread-safe and its sysctl
  helpers switch that thread's namespace); HTTP runs on the event loop.
- Restart: nothing is touched until the first state arrives; the first pass then finds the
  objects a previous run made, plans nothing for them, and traffic never stops.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from overlay_agent import cni, docker
from overlay_agent.client import MasterClient
from overlay_agent.cluster import ClusterState
from overlay_agent.desired import AgentOptions, Bridge, DesiredNet, desired
from overlay_agent.errors import CniError, KernelError, MasterError, StateError
from overlay_agent.metrics import Metrics
from overlay_agent.nat import Nat
from overlay_agent.netlink import Kernel
from overlay_agent.observed import ObservedNet
from overlay_agent.plan import (
    AddAddress,
    CreateBridge,
    DeleteAddress,
    Operation,
    ReplaceRoute,
    SetLink,
    plan,
)
from overlay_wire.contract import Status

log = logging.getLogger(__name__)

MAX_ROUNDS = 3
STATUS_CONFIGURING = Status.CONFIGURING.value
STATUS_OK = Status.OK.value
STATUS_FAILED = Status.FAILED.value


@dataclass(frozen=True)
class OverlayStatus:
    status: str
    error: str | None = None

    def wire(self, name: str) -> dict[str, str]:
        doc = {"name": name, "status": self.status}
        if self.error:
            doc["error"] = self.error
        return doc


@dataclass(frozen=True)
class Outcome:
    """What one reconcile pass did."""

    revision: int
    registered: bool  # our record was in the state
    converged: bool
    operations: int
    writes: int
    statuses: Mapping[str, OverlayStatus]
    want: DesiredNet | None = field(default=None, compare=False)


@dataclass
class Settings:
    options: AgentOptions
    netns: str | None
    cni_dir: Path | None
    cni_data_dir: Path


class Reconciler:
    """One pass at a time: make the kernel match a cluster state. Call from one thread only."""

    def __init__(
        self, settings: Settings, kernel: Kernel, nat: Nat, engine: docker.Docker | None = None
    ) -> None:
        self.settings = settings
        self.kernel = kernel
        self.nat = nat
        self.docker = engine  # None: Docker support off
        self.cni_writes = 0
        self._last_want: tuple[ClusterState, AgentOptions, int | None, DesiredNet | None] | None
        self._last_want = None

    @property
    def writes(self) -> int:
        """Every write so far: netlink messages, sysctls, nft transactions, CNI files, Docker."""
        docker_writes = self.docker.writes if self.docker is not None else 0
        return self.kernel.writes + self.nat.writes + self.cni_writes + docker_writes

    def reconcile(self, state: ClusterState) -> Outcome:
        start_writes = self.writes
        seen = self.kernel.observe()
        want = self._want(state, seen.underlay_mtu)
        if want is None:
            return Outcome(state.revision, False, False, 0, 0, {})
        errors: dict[str | None, list[str]] = {}
        want, seen = self._docker_step(want, seen, errors)
        operations = 0
        ops = plan(want, seen)
        for _ in range(MAX_ROUNDS):
            if not ops:
                break
            operations += len(ops)
            self._apply(ops, want, errors)
            seen = self.kernel.observe()
            ops = plan(want, seen)
        converged = not ops
        self._side_effects(want, errors)
        statuses = _statuses(want, errors, converged)
        ok = converged and not errors
        return Outcome(
            state.revision, True, ok, operations, self.writes - start_writes, statuses, want
        )

    def _want(self, state: ClusterState, underlay_mtu: int | None) -> DesiredNet | None:
        """``desired(...)``, computed again only when its inputs change: a resync pass between
        two changes reuses it (thousands of peers: a sizeable share of a no-change pass)."""
        options, last = self.settings.options, self._last_want
        # The state is immutable: the same object means the same state (never compare it deeply).
        if last is None or last[0] is not state or last[1:3] != (options, underlay_mtu):
            last = (state, options, underlay_mtu, desired(state.document(), options, underlay_mtu))
            self._last_want = last
        return last[3]

    def _apply(
        self, ops: list[Operation], want: DesiredNet, errors: dict[str | None, list[str]]
    ) -> None:
        for op, e in self.kernel.apply_all(ops):
            log.warning("%s", e)
            errors.setdefault(_overlay_of(op, want), []).append(str(e))

    def _docker_step(
        self, want: DesiredNet, seen: ObservedNet, errors: dict[str | None, list[str]]
    ) -> tuple[DesiredNet, ObservedNet]:
        """Docker networks first; then the kernel's view includes the bridges Docker made."""
        if self.docker is None:
            return want, seen
        outcome = self.docker.ensure(docker.specs(want.overlays))
        if outcome.changed:
            seen = self.kernel.observe()
        want, problems = docker.hand_over(want, seen, outcome)
        for name, problem in {**outcome.errors, **problems}.items():
            log.warning("overlay %s: %s", name, problem)
            errors.setdefault(name, []).append(f"{docker.FAILED}: {problem}")
        return want, seen

    def _side_effects(self, want: DesiredNet, errors: dict[str | None, list[str]]) -> None:
        try:
            self.nat.ensure(want.masquerade)
        except KernelError as e:
            log.warning("%s", e)
            errors.setdefault(None, []).append(str(e))
        if self.settings.cni_dir is None:
            return
        try:
            self.cni_writes += cni.ensure_configs(
                self.settings.cni_dir, self.settings.cni_data_dir, want.overlays
            )
        except CniError as e:
            log.warning("%s", e)
            for overlay in want.overlays:
                if overlay.mesos_bridge is not None:
                    errors.setdefault(overlay.name, []).append(f"Failed to write CNI config: {e}")


def _overlay_of(op: Operation, want: DesiredNet) -> str | None:
    """The overlay an operation serves; None when it serves them all (VTEP, forwarding, ...)."""
    if isinstance(op, ReplaceRoute):
        return want.route_overlay(op.route)
    name = None
    if isinstance(op, CreateBridge):
        name = op.bridge.name
    elif isinstance(op, SetLink | AddAddress | DeleteAddress):
        name = op.name if isinstance(op, SetLink) else op.link
    bridge = next((b for b in want.bridges if b.name == name), None)
    return bridge.overlay if bridge is not None else None


def _statuses(
    want: DesiredNet, errors: Mapping[str | None, list[str]], converged: bool
) -> dict[str, OverlayStatus]:
    shared = errors.get(None, [])
    result = {}
    for overlay in want.overlays:
        problems = shared + errors.get(overlay.name, [])
        if problems:
            result[overlay.name] = OverlayStatus(STATUS_FAILED, "; ".join(problems))
        elif converged:
            result[overlay.name] = OverlayStatus(STATUS_OK)
        else:
            result[overlay.name] = OverlayStatus(STATUS_CONFIGURING)
    return result


class AgentLoop:
    """The agent's life: register, then watch, tick, reconcile and report, until cancelled."""

    def __init__(
        self,
        settings: Settings,
        reconciler: Reconciler,
        client: MasterClient,
        metrics: Metrics,
        resync: float = 10.0,
        watch_timeout: float = 30.0,
        executor: ThreadPoolExecutor | None = None,
    ) -> None:
        self.settings = settings
        self.reconciler = reconciler
        self.client = client
        self.metrics = metrics
        self.resync = resync
        self.watch_timeout = watch_timeout
        self.state = ClusterState()
        self.loaded = False  # a full state has arrived
        self.outcome: Outcome | None = None
        self._kick = asyncio.Event()
        self._report_kick = asyncio.Event()
        self._reported: Mapping[str, OverlayStatus] | None = None
        # The thread that owns the Kernel: every kernel call goes through it.
        self._executor = executor or ThreadPoolExecutor(max_workers=1, thread_name_prefix="kernel")

    @property
    def ip(self) -> str:
        return str(self.settings.options.ip)

    async def run(self) -> None:
        try:
            await self._register()
            async with asyncio.TaskGroup() as group:
                group.create_task(self._watch())
                group.create_task(self._tick())
                group.create_task(self._work())
                group.create_task(self._report())
        finally:
            log.info("agent loop stopped")

    def ready(self) -> bool:
        o = self.outcome
        return self.loaded and o is not None and o.converged and o.revision == self.state.revision

    def statuses(self) -> Mapping[str, OverlayStatus]:
        return self.outcome.statuses if self.outcome is not None else {}

    async def _register(self) -> None:
        options = self.settings.options
        while True:
            try:
                await self.client.register(self.ip, options.mesos_bridge, options.docker_bridge)
                log.info("registered %s with %s", self.ip, self.client.master)
                return
            except MasterError as e:
                log.error("registration refused: %s", e)
                await asyncio.sleep(self.client.backoff.cap)

    async def _watch(self) -> None:
        while True:
            try:
                answer = await self.client.watch(self.state.revision, self.watch_timeout)
                new = self.state.apply(answer)
            except (MasterError, StateError) as e:
                log.error("watch failed: %s", e)
                await asyncio.sleep(self.client.backoff.cap)
                continue
            if answer.get("full") or new.revision != self.state.revision or not self.loaded:
                self.state, self.loaded = new, True
                self._kick.set()

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(self.resync)
            self._kick.set()

    async def _work(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await self._kick.wait()
            self._kick.clear()
            if not self.loaded:
                continue
            started = time.monotonic()
            try:
                outcome = await loop.run_in_executor(
                    self._executor, self.reconciler.reconcile, self.state
                )
            except Exception:  # loop top: log with traceback, back off, try again
                log.exception("reconcile failed")
                self.metrics.reconciles.labels("error").inc()
                await asyncio.sleep(min(self.resync, 1.0))
                self._kick.set()
                continue
            self._record(outcome, time.monotonic() - started)

    def _record(self, outcome: Outcome, seconds: float) -> None:
        self.outcome = outcome
        m = self.metrics
        m.duration.observe(seconds)
        m.reconciles.labels("converged" if outcome.converged else "pending").inc()
        m.writes.inc(outcome.writes)
        m.operations.inc(outcome.operations)
        m.revision.set(outcome.revision)
        m.ready.set(1 if self.ready() else 0)
        m.peers.set(len(outcome.want.neighbours) if outcome.want else 0)
        m.master_failures.set(self.client.failures)
        if outcome.operations:
            log.info("revision %d: %d operations", outcome.revision, outcome.operations)
        if not outcome.registered:
            log.warning(
                "no record for %s in revision %d: kernel left as is", self.ip, outcome.revision
            )
        if outcome.statuses != self._reported:
            self._report_kick.set()

    async def _report(self) -> None:
        while True:
            await self._report_kick.wait()
            self._report_kick.clear()
            statuses = self.statuses()
            if not statuses or statuses == self._reported:
                continue
            body = [statuses[name].wire(name) for name in sorted(statuses)]
            try:
                await self.client.report_status(self.ip, body)
                self._reported = statuses
            except MasterError as e:
                log.warning("status report refused: %s", e)

    def overlay_document(self) -> dict[str, Any]:
        """``GET /overlay-agent/overlay``: our record as the master sent it, plus local state."""
        return agent_document(
            self.ip, self.state, self.outcome, self.settings.cni_data_dir, self.metrics
        )


def agent_document(
    ip: str,
    state: ClusterState,
    outcome: Outcome | None,
    data_dir: Path,
    metrics: Metrics | None = None,
) -> dict[str, Any]:
    """DC/OS's ``AgentInfo`` for us: overlays with ``state``, Mesos bridges with ``capacity``."""
    record = state.agents.get(ip, {})
    want = outcome.want if outcome is not None else None
    bridges = {b.name: b for b in want.bridges} if want is not None else {}
    statuses = outcome.statuses if outcome is not None else {}
    overlays = []
    for overlay in record.get("overlays", []):
        doc = dict(overlay)
        name = str(doc.get("info", {}).get("name", ""))
        status = statuses.get(name, OverlayStatus(STATUS_CONFIGURING))
        doc["state"] = {k: v for k, v in status.wire(name).items() if k != "name"}
        mesos = doc.get("mesos_bridge")
        if isinstance(mesos, Mapping) and mesos.get("name") in bridges:
            bridge = bridges[str(mesos["name"])]
            doc["mesos_bridge"] = {**mesos, "capacity": _capacity(name, bridge, data_dir, metrics)}
        overlays.append(doc)
    return {"ip": ip, "overlays": overlays}


def _capacity(
    overlay: str, bridge: Bridge, data_dir: Path, metrics: Metrics | None
) -> dict[str, Any]:
    try:
        c = cni.capacity(overlay, bridge, data_dir)
    except CniError as e:
        return {"error": str(e)}
    if metrics is not None:
        for kind, value in (("total", c.total), ("used", c.used), ("free", c.free)):
            metrics.addresses.labels(bridge.name, kind).set(value)
    return {
        "total": c.total,
        "used": c.used,
        "free": c.free,
        "addresses": [str(a) for a in c.addresses],
    }
