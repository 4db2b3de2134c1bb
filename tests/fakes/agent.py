"""An ``AgentLoop`` over the fakes, for tests: a fake master (served to the real ``MasterClient``
through ``httpx.MockTransport``), the in-memory kernel, firewall and, optionally, CNI files; timers and
backoff on a virtual clock unless a test wants real time. ``fake_agent`` starts the loop and
stops it (and everything it started) on exit."""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path
from typing import Any

import httpx

from overlay_agent.client import Backoff, MasterClient
from overlay_agent.desired import AgentOptions, Network
from overlay_agent.loop import AgentLoop
from overlay_agent.metrics import Metrics
from overlay_agent.reconciler import Reconciler, Settings
from tests import statedoc
from tests.fakes.clock import VirtualClock
from tests.fakes.firewall import FakeFirewall
from tests.fakes.kernel import FakeKernel
from tests.fakes.master import URLS, FakeMaster
from tests.waiting import eventually

ME = "192.0.2.11"
RESYNC = 10.0
CAP = 2.0


def agent_ip(k: int) -> str:
    return f"192.0.2.{10 + k}"


@dataclass
class World:
    master: FakeMaster
    kernel: FakeKernel
    firewall: FakeFirewall
    clock: VirtualClock
    client: MasterClient
    agent: AgentLoop
    task: asyncio.Task[None]

    def block(self, k: int, subnet: str = "9.0.0.0/8", prefix: int = 26) -> IPv4Network:
        """Agent k's block: the master hands them out in registration order."""
        return statedoc.block(subnet, prefix, self.master.slots[agent_ip(k)] - 1)

    def vtep(self, k: int) -> IPv4Address:
        return statedoc.vtep_ip(self.master.slots[agent_ip(k)])

    def routes(self) -> set[Network]:
        return {r.dst for r in self.kernel.ns.observe(self.kernel.underlay_ip).routes}

    async def tick(self) -> int:
        """One resync period; returns once the pass it starts is over (its observation count)."""
        before = self.kernel.observations
        await self.clock.advance(RESYNC)
        await eventually("a resync pass", lambda: self.kernel.observations > before and idle(self))
        return self.kernel.observations


def idle(world: World) -> bool:
    """No pass running or due (the loop's own flags: nothing public says it)."""
    return world.agent._busy_since is None and not world.agent._kick.is_set()


@contextlib.asynccontextmanager
async def fake_agent(
    tmp_path: Path,
    peers: tuple[int, ...] = (2, 3),
    cni: bool = False,
    real_time: bool = False,
    **loop: Any,
) -> AsyncIterator[World]:
    """Agent 1 (``ME``) among ``peers``, all registered with a fake master; ``real_time``: the
    loop and the client sleep for real (a served agent), else on the world's virtual clock."""
    master = FakeMaster()
    for k in peers:
        master.register(agent_ip(k))
    clock = VirtualClock()
    sleep = asyncio.sleep if real_time else clock.sleep
    client = MasterClient(
        list(URLS),
        transport=httpx.MockTransport(master.handle),
        backoff=Backoff(base=0.1, cap=CAP, rng=random.Random(5)),
        sleep=sleep,
    )
    kernel, firewall = FakeKernel(), FakeFirewall()
    cni_dir = tmp_path / "cni" if cni else None
    settings = Settings(AgentOptions(ip=IPv4Address(ME)), None, cni_dir, tmp_path / "data")
    executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="kernel")
    agent = AgentLoop(
        settings,
        Reconciler(settings, kernel, firewall),
        client,
        Metrics(),
        resync=RESYNC,
        executor=executor,
        sleep=sleep,
        **loop,
    )
    task = asyncio.create_task(agent.run())
    try:
        yield World(master, kernel, firewall, clock, client, agent, task)
    finally:
        kernel.gate.set()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await client.aclose()
        executor.shutdown(wait=True)


async def converged(w: World) -> None:
    """Ready at the master's revision, nothing due, and its statuses reported: the report moves
    the master's revision, so until it is made the agent is about to be not ready again."""
    await eventually(
        "the agent ready",
        lambda: (
            w.agent.ready()
            and w.agent.state.revision == w.master.revision
            and idle(w)
            and not w.agent._report_kick.is_set()
            and w.agent._reported == w.agent.statuses()
        ),
    )
