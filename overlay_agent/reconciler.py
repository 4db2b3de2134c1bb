"""One reconcile pass: cluster state -> desired -> observe -> plan -> apply, on the three edges
(kernel, firewall, Docker; see edges.py). The loop that decides when a pass runs is in loop.py.

Design notes
- Level-triggered. Every pass recomputes the desired objects from the *whole* local copy of the
  cluster state and compares them with a fresh observation of the kernel. So a missed delta, a
  restart or a hand-made change is repaired by the next pass, and departed agents are removed
  instead of leaking (dcos-net never deleted anything).
- A pass is: observe, plan, apply in the plan's order, then observe and plan again to verify; if
  the kernel reacted (e.g. deleting an address dropped routes through it) another round runs, up to
  ``MAX_ROUNDS``. "Converged" means the verification plan was empty: that is what ``/readyz``
  reports, for the revision the pass was computed from. A pass with nothing to do writes nothing.
  The verification is skipped when the kernel acknowledged every operation and none of them can
  take other objects with it (``ADDITIVE``: creations, additions and replacements; a deletion
  or a link's new MTU can): the kernel then holds exactly what the plan computed, and observing it again
  (a dump of every peer object: a third of a cold pass at thousands of peers) would only say so.
- The garbage collector is paused during a pass: a pass builds tens of thousands of long-lived
  objects (the desired and observed peers), and every full collection it would trigger walks all
  of them and the whole cluster state again while freeing nothing (bench/findings.md). What a
  pass leaves unreferenced is freed by reference counting as usual.
- Docker (if a daemon is configured) goes first in a pass: its networks own ``d-<name>`` together
  with the agent, and the order that keeps the two from fighting is explained in docker.py.
- The firewall (egress NAT, isolation) goes after the kernel step and before the CNI configs: no
  container can join a new network through CNI before the firewall knows the network, and one
  that joins through Docker in between is in no known network, so not forwarded (firewall.py).
- Failures are contained: an operation that fails is recorded against the overlay it serves
  (``STATUS_FAILED`` + error) and the rest of the plan still runs; the next pass retries.
- Our own record missing from the state (deleted on the master): the kernel is left alone and the
  pass reports not registered (the agent is then not ready).
- Not thread-safe: the edges are driven from the one thread that calls ``reconcile``.
"""

from __future__ import annotations

import gc
import logging
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from overlay_agent import cni, docker
from overlay_agent.cluster import ClusterState
from overlay_agent.desired import AgentOptions, DesiredNet, desired
from overlay_agent.edges import DockerEdge, FirewallEdge, KernelEdge
from overlay_agent.errors import CniError, KernelError
from overlay_agent.observed import ObservedNet
from overlay_agent.plan import (
    AddAddress,
    CreateBridge,
    CreateVtep,
    DeleteAddress,
    EnableForwarding,
    Operation,
    ReplaceFdb,
    ReplaceNeighbour,
    ReplaceRoute,
    SetLink,
    plan,
)
from overlay_wire.contract import Status

log = logging.getLogger(__name__)

MAX_ROUNDS = 3
# Operations whose acknowledgement is the whole story: they change only their own object.
# Operations whose acknowledgement is the whole story: they add or replace their own object and
# take nothing with them. Deletions take what hung off the object; a link's new MTU or state
# can too (below 1280 the kernel drops a link's IPv6), so SetLink is verified.
ADDITIVE = (
    AddAddress,
    CreateBridge,
    CreateVtep,
    EnableForwarding,
    ReplaceFdb,
    ReplaceNeighbour,
    ReplaceRoute,
)


@dataclass(frozen=True)
class OverlayStatus:
    status: Status
    error: str | None = None

    def wire(self, name: str) -> dict[str, str]:
        doc = {"name": name, "status": self.status.value}
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
    cni_dir: Path | None  # configuration lists (.conflist) for libcni runtimes
    cni_data_dir: Path
    mesos_cni_dir: Path | None = None  # DC/OS's single-plugin .conf files, for Mesos UCR


class Reconciler:
    """One pass at a time: make the kernel match a cluster state. Call from one thread only."""

    def __init__(
        self,
        settings: Settings,
        kernel: KernelEdge,
        firewall: FirewallEdge,
        engine: DockerEdge | None = None,
    ) -> None:
        self.settings = settings
        self.kernel = kernel
        self.firewall = firewall
        self.docker = engine  # None: Docker support off
        self.cni_writes = 0
        self._last_want: tuple[ClusterState, AgentOptions, int | None, DesiredNet | None] | None
        self._last_want = None

    @property
    def writes(self) -> int:
        """Every write so far: netlink messages, sysctls, nft transactions, CNI files, Docker."""
        docker_writes = self.docker.writes if self.docker is not None else 0
        return self.kernel.writes + self.firewall.writes + self.cni_writes + docker_writes

    def reconcile(self, state: ClusterState) -> Outcome:
        with _collector_paused():
            return self._reconcile(state)

    def _reconcile(self, state: ClusterState) -> Outcome:
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
            if not self._apply(ops, want, errors) and _only_additive(ops):
                ops = []  # acknowledged, and nothing else moved: nothing to verify
                break
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
        # The state is immutable and keeps its parts when a revision changed neither (e.g. a
        # container report elsewhere): the same parts mean the same inputs (never compared deeply).
        if last is None or not last[0].same_content(state) or last[1:3] != (options, underlay_mtu):
            last = (state, options, underlay_mtu, desired(state.document(), options, underlay_mtu))
            self._last_want = last
        return last[3]

    def _apply(
        self, ops: list[Operation], want: DesiredNet, errors: dict[str | None, list[str]]
    ) -> int:
        """Apply ``ops``; the number the kernel refused (each recorded in ``errors``)."""
        failures = self.kernel.apply_all(ops)
        for op, e in failures:
            log.warning("%s", e)
            errors.setdefault(_overlay_of(op, want), []).append(str(e))
        return len(failures)

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
            self.firewall.ensure(want.masquerade, want.isolation)
        except KernelError as e:
            log.warning("%s", e)
            errors.setdefault(None, []).append(str(e))
        settings = self.settings
        if settings.cni_dir is None and settings.mesos_cni_dir is None:
            return
        try:
            self.cni_writes += cni.ensure_configs(
                settings.cni_dir, settings.cni_data_dir, want.overlays, settings.mesos_cni_dir
            )
        except CniError as e:
            log.warning("%s", e)
            for overlay in want.overlays:
                if overlay.mesos_bridge is not None:
                    errors.setdefault(overlay.name, []).append(f"Failed to write CNI config: {e}")


@contextmanager
def _collector_paused() -> Iterator[None]:
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _only_additive(ops: list[Operation]) -> bool:
    return all(isinstance(op, ADDITIVE) for op in ops)


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
        # The same refusal comes back in every round of a pass: say it once.
        problems = dict.fromkeys(shared + errors.get(overlay.name, []))
        if problems:
            result[overlay.name] = OverlayStatus(Status.FAILED, "; ".join(problems))
        elif converged:
            result[overlay.name] = OverlayStatus(Status.OK)
        else:
            result[overlay.name] = OverlayStatus(Status.CONFIGURING)
    return result
