"""Containers through the real CNI plugins: address exhaustion reported by the agent endpoint,
egress masquerade to the underlay, no NAT between containers."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from overlay_agent.api import create_app
from overlay_agent.cluster import ClusterState
from overlay_agent.metrics import Metrics
from overlay_agent.reconciler import Outcome
from overlay_agent.view import agent_document
from tests import statedoc
from tests.netns.harness import LocalAgent, cluster, local_agent
from tests.netns.topology import Bed, add_container, sh
from tests.waiting import wait_until

pytestmark = pytest.mark.netns

PROBE = str(Path(__file__).with_name("udp_echo.py"))
SMALL = [("dcos", "9.0.0.0/8", 28)]  # /28 agent blocks: a /29 lower half holds 5 containers


class View:
    """The endpoint's view of one in-process agent (what ``AgentLoop`` gives the API)."""

    def __init__(self, agent: LocalAgent, state: ClusterState, outcome: Outcome) -> None:
        self.metrics = Metrics()
        self.agent, self.state, self.outcome = agent, state, outcome

    def overlay_document(self) -> dict[str, Any]:
        return agent_document(
            self.agent.ip, self.state, self.outcome, self.agent.data_dir, self.metrics
        )

    def ready(self) -> bool:
        return self.outcome.converged

    async def health(self) -> str | None:
        return None


@pytest.fixture
def duo(bed: Bed) -> Iterator[list[LocalAgent]]:
    bed.build(agents=2)
    agents = [local_agent(bed, k) for k in (1, 2)]
    try:
        yield agents
    finally:
        for a in agents:
            a.close()


def test_exhaustion_gives_plugin_error_and_endpoint_shows_used_equals_total(
    bed: Bed, duo: list[LocalAgent]
) -> None:
    doc = statedoc.state([statedoc.record(bed.agent_ip(k), k, SMALL) for k in (1, 2)], SMALL)
    a1 = duo[0]
    outcome = a1.reconcile(doc)
    assert outcome.converged
    placed = [add_container(bed, a1.ns, a1.conf(), f"x{i}") for i in range(5)]
    assert [c.error for c in placed] == [None] * 5
    extra = add_container(bed, a1.ns, a1.conf(), "x5")
    assert extra.ip is None and extra.error is not None
    assert "no IP addresses available" in extra.error

    state = ClusterState.from_document(doc, a1.revision)
    app = create_app(View(a1, state, outcome))

    async def ask() -> tuple[dict[str, Any], str, int]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://agent") as client:
            body = (await client.get("/overlay-agent/overlay")).json()
            metrics = (await client.get("/metrics")).text
            return body, metrics, (await client.get("/readyz")).status_code

    body, metrics, ready = asyncio.run(ask())
    (overlay,) = body["overlays"]
    assert overlay["state"] == {"status": "STATUS_OK"}
    capacity = overlay["mesos_bridge"]["capacity"]
    assert (capacity["total"], capacity["used"], capacity["free"]) == (5, 5, 0)
    assert sorted(capacity["addresses"]) == sorted(c.ip for c in placed)
    assert 'overlay_agent_bridge_addresses{bridge="m-dcos",kind="free"} 0.0' in metrics
    assert ready == 200


def test_egress_is_masqueraded_and_container_to_container_keeps_its_source(
    bed: Bed, duo: list[LocalAgent]
) -> None:
    for a in duo:
        assert a.reconcile(cluster(bed, (1, 2))).converged
    c1 = add_container(bed, duo[0].ns, duo[0].conf(), "c1")
    c2 = add_container(bed, duo[1].ns, duo[1].conf(), "c2")
    assert c1.ip and c2.ip
    bed.start(
        "ip",
        "netns",
        "exec",
        bed.underlay,
        sys.executable,
        PROBE,
        "serve",
        "7777",
        log=bed.root / "u.log",
    )
    bed.start(
        "ip",
        "netns",
        "exec",
        c2.ns,
        sys.executable,
        PROBE,
        "serve",
        "7777",
        log=bed.root / "c2.log",
    )

    def seen_by(host: str) -> str | None:
        done = sh(
            "ip", "netns", "exec", c1.ns, sys.executable, PROBE, "ask", host, "7777", check=False
        )
        return done.stdout.strip() if done.returncode == 0 else None

    answers: dict[str, str | None] = {}
    for host in ("192.0.2.1", c2.ip):
        wait_until(
            f"an answer from {host}",
            lambda h=host: answers.update({h: seen_by(h)}) or answers[h] is not None,
        )
    assert answers["192.0.2.1"] == bed.agent_ip(1)  # masqueraded to agent 1's underlay address
    assert answers[c2.ip] == c1.ip  # overlay to overlay: source kept
