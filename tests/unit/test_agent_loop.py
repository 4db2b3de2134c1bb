"""AgentLoop against a fake master (tests/fakes/master.py, served to the real MasterClient through
httpx.MockTransport) and the in-memory edges: registration, watch deltas and full answers, master
loss with backoff, status reports only on change, readiness of the latest revision, deletion on
the master, networks added, changed and deleted at runtime, liveness. Timers and backoff run on a virtual clock: nothing waits on wall time."""

from __future__ import annotations

import asyncio
import errno
import time
from collections.abc import Callable, Coroutine
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path
from typing import Any

import pytest

from overlay_agent.desired import Route
from overlay_agent.loop import AgentLoop
from overlay_agent.metrics import Metrics
from overlay_agent.plan import ReplaceRoute
from tests.fakes.agent import CAP, ME, RESYNC, World, agent_ip, converged
from tests.fakes.agent import fake_agent as world
from tests.waiting import eventually

pytestmark = pytest.mark.unit


def run(scenario: Callable[[], Coroutine[Any, Any, None]]) -> None:
    asyncio.run(scenario())


def test_registers_then_follows_deltas_and_full_answers(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with world(tmp_path) as w:
            await converged(w)
            assert ME in w.master.agents and w.routes() == {w.block(2), w.block(3)}
            assert w.master.watches[0] == (0, True)  # the first answer is the whole state
            w.master.register(agent_ip(4))
            await converged(w)
            assert w.routes() == {w.block(2), w.block(3), w.block(4)}
            w.master.delete(agent_ip(2))
            await converged(w)
            assert w.routes() == {w.block(3), w.block(4)}
            assert all(not full for _, full in w.master.watches[1:])  # deltas since
            # Changes the agent missed while away, older than what the master keeps: it gets
            # the whole state again, and what is no longer in it goes.
            w.master.outage()
            w.master.register(agent_ip(5))
            w.master.delete(agent_ip(3))
            w.master.compact()
            answered = len(w.master.watches)
            w.master.outage(False)
            await w.clock.advance(CAP)
            await converged(w)
            # the first answer after the outage was the whole state (later ones may be deltas:
            # e.g. the agent's own container report moves the revision)
            assert w.master.watches[answered][1] and w.routes() == {w.block(4), w.block(5)}

    run(scenario)


def test_networks_added_changed_and_deleted_follow_from_the_watch_alone(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with world(tmp_path, cni=True) as w:
            await converged(w)
            registrations = [r for r in w.master.requests if r[1] == "POST"]
            cni_dir = w.agent.settings.cni_dir
            assert cni_dir is not None

            w.master.add_network("apps", "10.128.0.0/9", 24)
            await converged(w)
            apps = {w.block(k, "10.128.0.0/9", 24) for k in (2, 3)}
            assert w.routes() == {w.block(2), w.block(3)} | apps
            bridges = {b.name for b in w.kernel.ns.observe(IPv4Address(ME)).bridges}
            assert bridges == {"m-dcos", "d-dcos", "m-apps", "d-apps"}
            assert (cni_dir / "apps.conflist").exists()
            assert addresses(w, "m-apps") == 125.0  # a /25 half: free addresses
            assert w.firewall.table is not None
            assert IPv4Network("10.128.0.0/9") in w.firewall.table["sources4"]

            writes = (w.kernel.writes, w.firewall.writes)
            w.master.update_network("apps", allow_from=["dcos"])  # the network list only
            await converged(w)
            assert (w.kernel.writes, w.firewall.writes) == (writes[0], writes[1] + 1)
            pair = (IPv4Network("9.0.0.0/8"), IPv4Network("10.128.0.0/9"))
            assert pair in w.firewall.table["allowed4"]
            await w.tick()  # a resync pass with nothing new writes nothing
            assert (w.kernel.writes, w.firewall.writes) == (writes[0], writes[1] + 1)

            w.master.delete_network("dcos")
            await converged(w)
            assert w.routes() == apps
            bridges = {b.name for b in w.kernel.ns.observe(IPv4Address(ME)).bridges}
            assert bridges == {"m-apps", "d-apps"}
            assert sorted(p.name for p in cni_dir.iterdir()) == ["apps.conflist"]
            assert addresses(w, "m-dcos") is None  # its metrics went with it
            assert w.firewall.table["allowed4"] == {(pair[1], pair[1])}
            # all of it from the watch: the agent registered once
            assert [r for r in w.master.requests if r[1] == "POST"] == registrations

    run(scenario)


def addresses(w: World, bridge: str) -> float | None:
    """The free-address gauge of ``bridge``, as a scrape of /metrics would read it."""
    w.agent.overlay_document()  # what /metrics does first
    return w.agent.metrics.registry.get_sample_value(
        "overlay_agent_bridge_addresses", {"bridge": bridge, "kind": "free"}
    )


def test_master_loss_keeps_the_data_plane_and_retries_with_backoff(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with world(tmp_path) as w:
            await converged(w)
            await eventually("the first report", lambda: len(w.master.reports) == 1)
            tables, writes = w.kernel.ns.observe(IPv4Address(ME)), w.kernel.writes
            w.master.outage()
            await eventually("a failed watch", lambda: w.client.failures >= 1)
            for _ in range(5):
                await w.tick()  # passes keep running on the last state
            assert w.client.failures >= 5
            assert all(0 <= s <= CAP for s in w.clock.slept if s != RESYNC)  # capped backoff
            assert (w.kernel.ns.observe(IPv4Address(ME)), w.kernel.writes) == (tables, writes)
            assert w.agent.ready()  # the kernel matches the latest state the agent has
            assert len(w.master.reports) == 1  # nothing changed: nothing to report

            w.master.outage(False)
            w.master.unavailable = {"m1", "m2"}  # up, but without a leader: 503 + Retry-After
            failures = w.client.failures
            await w.clock.advance(CAP)
            await eventually("503 answers", lambda: w.client.failures > failures)
            assert w.clock.slept[-1] >= 1.0  # the master's Retry-After
            w.master.unavailable.clear()
            w.master.register(agent_ip(4))
            await w.clock.advance(CAP)
            await converged(w)
            assert w.routes() == {w.block(2), w.block(3), w.block(4)}

    run(scenario)


def test_status_is_reported_only_when_it_changes(tmp_path: Path) -> None:
    ok = [{"name": "dcos", "status": "STATUS_OK"}]

    async def scenario() -> None:
        async with world(tmp_path) as w:
            await converged(w)
            route = Route(w.block(2), w.vtep(2))
            await eventually("a report", lambda: len(w.master.reports) == 1)
            assert w.master.reports == [(ME, ok)]
            for _ in range(3):
                await w.tick()
            assert len(w.master.reports) == 1
            w.kernel.refuse(ReplaceRoute(route), errno.ENOBUFS)
            w.kernel.ns.route_del(route.dst)
            await w.tick()
            await eventually("a second report", lambda: len(w.master.reports) == 2)
            error = f"adding route {route.dst} via {route.via}: No buffer space available"
            failed = {"status": "STATUS_FAILED", "error": error}
            assert w.master.reports[-1] == (ME, [{"name": "dcos", **failed}])
            assert w.master.agents[ME]["overlays"][0]["state"] == failed
            await w.tick()
            assert len(w.master.reports) == 2 and not w.agent.ready()
            w.kernel.refusals.clear()
            await w.tick()
            await eventually("a third report", lambda: len(w.master.reports) == 3)
            assert w.master.reports[-1] == (ME, ok)
            await converged(w)

    run(scenario)


def test_readiness_follows_the_latest_revision(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with world(tmp_path) as w:
            await converged(w)
            w.kernel.entered.clear()
            w.kernel.gate.clear()  # the next pass stops in observe()
            w.master.register(agent_ip(4))
            await eventually("the new state", lambda: w.agent.state.revision == w.master.revision)
            await eventually("the pass started", w.kernel.entered.is_set)
            assert not w.agent.ready()  # converged, but on an older revision
            w.kernel.gate.set()
            await converged(w)
            assert w.block(4) in w.routes()

    run(scenario)


def test_deleted_on_the_master_leaves_the_kernel_alone_and_is_not_ready(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with world(tmp_path) as w:
            await converged(w)
            tables, writes = w.kernel.ns.observe(IPv4Address(ME)), w.kernel.writes
            w.master.delete(ME)
            await eventually(
                "a pass without our record",
                lambda: w.agent.outcome is not None and not w.agent.outcome.registered,
            )
            assert not w.agent.ready()
            await w.tick()
            assert (w.kernel.ns.observe(IPv4Address(ME)), w.kernel.writes) == (tables, writes)

    run(scenario)


def test_a_pass_that_raises_is_retried_after_a_pause(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with world(tmp_path) as w:
            await converged(w)
            w.kernel.fail_observe("netlink socket closed")
            await w.clock.advance(RESYNC)
            await eventually(
                "the error counted",
                lambda: (
                    w.agent.metrics.registry.get_sample_value(
                        "overlay_agent_reconciles_total", {"result": "error"}
                    )
                    == 1
                ),
            )
            await w.clock.advance(1.0)
            await converged(w)

    run(scenario)


def test_health_follows_the_loop_and_the_kernel_worker(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with world(tmp_path, stuck_after=0.05) as w:
            await converged(w)
            assert await w.agent.health() is None
            w.kernel.entered.clear()
            w.kernel.gate.clear()
            await w.clock.advance(RESYNC)
            await eventually("the pass started", w.kernel.entered.is_set)
            await until_health(w, lambda h: h is not None and "in one pass for" in h)
            w.kernel.gate.set()
            await until_health(w, lambda h: h is None)
            w.task.cancel()
            await asyncio.gather(w.task, return_exceptions=True)
            assert await w.agent.health() == "the agent loop has stopped"

    run(scenario)


def test_health_before_the_loop_runs(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with world(tmp_path) as w:
            fresh = AgentLoop(w.agent.settings, w.agent.reconciler, w.client, Metrics())
            assert await fresh.health() == "the agent loop has not started"

    run(scenario)


async def until_health(w: World, wanted: Callable[[str | None], bool]) -> None:
    deadline = time.monotonic() + 10
    while not wanted(last := await w.agent.health()):
        if time.monotonic() > deadline:
            raise AssertionError(f"health stayed {last!r}")
        await asyncio.sleep(0.005)
