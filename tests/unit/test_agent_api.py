"""The agent's HTTP endpoint over ASGI, in front of an AgentLoop on the fakes (tests/fakes):
answers and status codes follow the loop (ready, healthy, stuck), 405 names the allowed method,
and the OpenAPI document declares every status code and content type the routes answer with."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import httpx
import pytest

from overlay_agent.api import create_app
from tests.fakes.agent import ME, World, agent_ip, converged
from tests.fakes.agent import fake_agent as world
from tests.waiting import eventually

pytestmark = pytest.mark.unit


def http(w: World) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=create_app(w.agent))
    return httpx.AsyncClient(transport=transport, base_url="http://agent")


def test_overlay_document_readiness_and_metrics(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with world(tmp_path, cni=True) as w, http(w) as c:
            await converged(w)
            doc = (await c.get("/overlay-agent/overlay")).json()
            assert doc["ip"] == ME
            (overlay,) = doc["overlays"]
            assert overlay["state"] == {"status": "STATUS_OK"}
            capacity = {"total": 29, "used": 0, "free": 29, "addresses": []}  # a /27 half
            assert overlay["mesos_bridge"]["capacity"] == capacity
            ready = await c.get("/readyz")
            assert (ready.status_code, ready.json()) == (200, {"ready": True})
            metrics = await c.get("/metrics")
            assert metrics.headers["content-type"].startswith("text/plain")
            assert (
                'overlay_agent_bridge_addresses{bridge="m-dcos",kind="free"} 29.0' in metrics.text
            )

            w.kernel.entered.clear()
            w.kernel.gate.clear()  # the pass for the next revision stops in observe()
            w.master.register(agent_ip(4))
            await eventually("the pass started", w.kernel.entered.is_set)
            not_ready = await c.get("/readyz")
            assert (not_ready.status_code, not_ready.json()) == (503, {"ready": False})
            w.kernel.gate.set()

    asyncio.run(scenario())


def test_healthz_says_why_the_agent_is_not_alive(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with world(tmp_path, stuck_after=0.05) as w, http(w) as c:
            await converged(w)
            alive = await c.get("/healthz")
            assert (alive.status_code, alive.json()) == (200, {"status": "ok"})
            w.kernel.entered.clear()
            w.kernel.gate.clear()
            await w.clock.advance(10)
            await eventually("the pass started", w.kernel.entered.is_set)
            deadline = time.monotonic() + 10
            while (stuck := await c.get("/healthz")).status_code == 200:
                assert time.monotonic() < deadline, "healthz stayed 200"
                await asyncio.sleep(0.01)  # until the pass is older than stuck_after
            assert stuck.status_code == 503
            assert stuck.json()["status"] == "failing"
            assert stuck.json()["reason"].startswith("the kernel worker has been in one pass for")
            w.kernel.gate.set()
            w.task.cancel()
            await asyncio.gather(w.task, return_exceptions=True)
            stopped = await c.get("/healthz")
            assert stopped.json() == {"status": "failing", "reason": "the agent loop has stopped"}

    asyncio.run(scenario())


def test_wrong_method_is_405_with_allow(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with world(tmp_path) as w, http(w) as c:
            for path in ("/overlay-agent/overlay", "/healthz", "/readyz", "/metrics"):
                answer = await c.post(path)
                assert (answer.status_code, answer.headers["allow"]) == (405, "GET")

    asyncio.run(scenario())


def test_openapi_declares_status_codes_and_content_types(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with world(tmp_path) as w, http(w) as c:
            paths = (await c.get("/openapi.json")).json()["paths"]
            declared = {
                path: {code: sorted(r["content"]) for code, r in ops["get"]["responses"].items()}
                for path, ops in paths.items()
            }
            assert declared == {
                "/overlay-agent/overlay": {"200": ["application/json"]},
                "/healthz": {"200": ["application/json"], "503": ["application/json"]},
                "/readyz": {"200": ["application/json"], "503": ["application/json"]},
                "/metrics": {"200": ["text/plain"]},
            }
            overlay = paths["/overlay-agent/overlay"]["get"]["responses"]["200"]
            schema = overlay["content"]["application/json"]["schema"]
            assert schema["properties"]["ip"] == {"type": "string", "format": "ipv4"}

    asyncio.run(scenario())
