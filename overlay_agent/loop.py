"""The agent's life: register -> long-poll watch | periodic timer -> reconcile pass -> status report.

Design notes
- The watch only decides *when* a pass runs, never *what* it changes (reconciler.py is
  level-triggered): every answer and every ``resync`` seconds kick a pass over the whole local
  copy of the cluster state, so a missed delta is repaired at the latest one period later.
- Masters unreachable: no new state arrives, so passes keep the kernel exactly as the last state
  says; nothing is torn down for lack of an answer. The client retries with capped backoff.
- Readiness: a full state has arrived and the pass computed from the *latest* revision
  converged. Status reports go to the masters only when the statuses change.
- Containers (``inventory``): every ``inventory_period`` the worker thread reads which containers
  sit on our bridges (host-local's leases, Docker's networks); the list is reported whole, and
  only when it differs from the last report that the masters acknowledged. Reading often and
  writing rarely keeps a new container visible within about a second at no cost to the log.
- All kernel work runs on ONE worker thread (the ``Kernel`` is not thread-safe and its sysctl
  helpers switch that thread's namespace); HTTP runs on the event loop.
- Liveness (``health``): the loop's task runs and the kernel worker answers. An idle worker must
  run a no-op within ``HEALTH_TIMEOUT``; a busy one must not have spent more than ``stuck_after``
  in one pass (a hung netlink, nft or Docker call). Unreachable masters do not make the agent
  unhealthy: its data plane is fine, and restarting it would not bring them back.
- Restart: nothing is touched until the first state arrives; the first pass then finds the
  objects a previous run made, plans nothing for them, and traffic never stops.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from overlay_agent.client import MasterClient
from overlay_agent.cluster import ClusterState
from overlay_agent.errors import CniError, DockerError, MasterError, StateError
from overlay_agent.inventory import Container, inventory
from overlay_agent.metrics import Metrics
from overlay_agent.reconciler import Outcome, OverlayStatus, Reconciler, Settings
from overlay_agent.view import agent_document

log = logging.getLogger(__name__)

HEALTH_TIMEOUT = 5.0  # an idle kernel worker answers a no-op in microseconds
STUCK_AFTER = 120.0  # longer than any honest pass (Docker calls time out after 30 s each)
INVENTORY_PERIOD = 0.5  # seconds between two readings of the containers on our bridges

Sleep = Callable[[float], Awaitable[None]]


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
        sleep: Sleep = asyncio.sleep,
        stuck_after: float = STUCK_AFTER,
        inventory_period: float = INVENTORY_PERIOD,
    ) -> None:
        self.settings = settings
        self.reconciler = reconciler
        self.client = client
        self.metrics = metrics
        self.resync = resync
        self.watch_timeout = watch_timeout
        self.stuck_after = stuck_after
        self.inventory_period = inventory_period
        self.containers: tuple[Container, ...] | None = None  # as last acknowledged by a master
        self.state = ClusterState()
        self.loaded = False  # a full state has arrived
        self.outcome: Outcome | None = None
        self._sleep = sleep
        self._kick = asyncio.Event()
        self._report_kick = asyncio.Event()
        self._reported: Mapping[str, OverlayStatus] | None = None
        self._task: asyncio.Task[Any] | None = None
        self._busy_since: float | None = None  # monotonic start of the pass in progress
        # The thread that owns the Kernel: every kernel call goes through it.
        self._executor = executor or ThreadPoolExecutor(max_workers=1, thread_name_prefix="kernel")

    @property
    def ip(self) -> str:
        return str(self.settings.options.ip)

    async def run(self) -> None:
        self._task = asyncio.current_task()
        try:
            await self._register()
            async with asyncio.TaskGroup() as group:
                group.create_task(self._watch())
                group.create_task(self._tick())
                group.create_task(self._work())
                group.create_task(self._report())
                group.create_task(self._inventory())
        finally:
            log.info("agent loop stopped")

    def ready(self) -> bool:
        o = self.outcome
        return self.loaded and o is not None and o.converged and o.revision == self.state.revision

    async def health(self) -> str | None:
        """None while the agent is alive; otherwise why it is not (``/healthz``)."""
        if self._task is None:
            return "the agent loop has not started"
        if self._task.done():
            return "the agent loop has stopped"
        if self._busy_since is not None:  # in a pass: judged by how long it has taken
            return self._busy()
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(HEALTH_TIMEOUT):
                await loop.run_in_executor(self._executor, _noop)
        except TimeoutError:
            if self._busy_since is None:
                return f"the kernel worker did not answer within {HEALTH_TIMEOUT:g}s"
            return self._busy()  # a pass started meanwhile: judged by its duration alone
        except RuntimeError as e:  # the executor was shut down
            return f"the kernel worker is gone: {e}"
        return None

    def _busy(self) -> str | None:
        started = self._busy_since
        if started is None:
            return None
        seconds = time.monotonic() - started
        if seconds > self.stuck_after:
            return f"the kernel worker has been in one pass for {seconds:.0f}s"
        return None

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
                await self._sleep(self.client.backoff.cap)

    async def _watch(self) -> None:
        while True:
            try:
                answer = await self.client.watch(self.state.revision, self.watch_timeout)
                new = self.state.apply(answer)
            except (MasterError, StateError) as e:
                log.error("watch failed: %s", e)
                await self._sleep(self.client.backoff.cap)
                continue
            if answer.get("full") or new.revision != self.state.revision or not self.loaded:
                self.state, self.loaded = new, True
                self._kick.set()

    async def _tick(self) -> None:
        while True:
            await self._sleep(self.resync)
            self._kick.set()

    async def _work(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await self._kick.wait()
            self._kick.clear()
            if not self.loaded:
                continue
            started = self._busy_since = time.monotonic()
            try:
                outcome = await loop.run_in_executor(
                    self._executor, self.reconciler.reconcile, self.state
                )
            except Exception:  # loop top: log with traceback, back off, try again
                log.exception("reconcile failed")
                self.metrics.reconciles.labels("error").inc()
                await self._sleep(min(self.resync, 1.0))
                self._kick.set()
                continue
            finally:
                self._busy_since = None
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

    async def _inventory(self) -> None:
        loop = asyncio.get_running_loop()
        refused: tuple[tuple[Container, ...], int] | None = None
        while True:
            await self._sleep(self.inventory_period)
            want = self.outcome.want if self.outcome is not None else None
            if want is None:
                continue  # not registered in the state we hold, or no pass yet
            try:
                found = await loop.run_in_executor(
                    self._executor,
                    inventory,
                    want.overlays,
                    self.settings.cni_data_dir,
                    self.reconciler.docker,
                )
            except (CniError, DockerError) as e:
                log.warning("cannot read the containers on our bridges: %s", e)
                continue
            if found == self.containers or (found, self.state.revision) == refused:
                continue  # reported already, or refused for this state: wait for a change
            try:
                await self.client.report_containers(self.ip, [c.wire() for c in found])
                self.containers, refused = found, None
            except MasterError as e:
                log.warning("container report refused: %s", e)
                refused = (found, self.state.revision)

    def overlay_document(self) -> dict[str, Any]:
        """``GET /overlay-agent/overlay``: our record as the master sent it, plus local state."""
        return agent_document(
            self.ip, self.state, self.outcome, self.settings.cni_data_dir, self.metrics
        )


def _noop() -> None:
    """Run on the kernel worker to show that it still takes work."""
