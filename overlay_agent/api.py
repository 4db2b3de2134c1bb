"""The agent's HTTP endpoint: DC/OS's ``GET /overlay-agent/overlay`` (reference 2.2) with each
overlay's local state and, per Mesos bridge, container-address capacity (total, used, free and
the addresses in use, from host-local's leases); plus ``/healthz``, ``/readyz`` and ``/metrics``.
"""

from __future__ import annotations

from typing import Any, Protocol

from fastapi import FastAPI, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from overlay_agent.metrics import Metrics


class AgentView(Protocol):
    metrics: Metrics

    def overlay_document(self) -> dict[str, Any]: ...

    def ready(self) -> bool: ...

    async def health(self) -> str | None:
        """None while alive; otherwise why not."""
        ...


def create_app(agent: AgentView) -> FastAPI:
    app = FastAPI(title="overlay-agent", docs_url=None, redoc_url=None)

    @app.get("/overlay-agent/overlay")
    def overlay() -> JSONResponse:
        return JSONResponse(agent.overlay_document())

    @app.get("/healthz")
    async def healthz() -> JSONResponse:
        problem = await agent.health()
        if problem is None:
            return JSONResponse({"status": "ok"})
        return JSONResponse({"status": "failing", "reason": problem}, status_code=503)

    @app.get("/readyz")
    def readyz() -> JSONResponse:
        ready = agent.ready()
        return JSONResponse({"ready": ready}, status_code=200 if ready else 503)

    @app.get("/metrics")
    def metrics() -> Response:
        agent.overlay_document()  # refreshes the per-bridge address gauges
        return Response(generate_latest(agent.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    return app
