"""The agent's HTTP endpoint: DC/OS's ``GET /overlay-agent/overlay`` (docs/api.md) with each
overlay's local state and, per Mesos bridge, container-address capacity (total, used, free and
the addresses in use, from host-local's leases); plus ``/healthz``, ``/readyz`` and ``/metrics``.

Every route declares what it answers (status codes, content types, schemas from schema.py), so
the OpenAPI document is exact: a schema-driven fuzzer finds nothing it does not describe. A
method a path does not serve gets 405 with ``Allow`` (Starlette's routing does that).
"""

from __future__ import annotations

from typing import Any, Protocol

from fastapi import FastAPI, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from overlay_agent.metrics import Metrics
from overlay_agent.schema import HealthAnswer, OverlayAnswer, ReadinessAnswer, json_schema
from overlay_wire.contract import AGENT_OVERLAY_PATH, JSON

PROMETHEUS = "text/plain"  # the exposition format; the header adds its version and charset


class AgentView(Protocol):
    metrics: Metrics

    def overlay_document(self) -> dict[str, Any]: ...

    def ready(self) -> bool: ...

    async def health(self) -> str | None:
        """None while alive; otherwise why not."""
        ...


def create_app(agent: AgentView) -> FastAPI:
    app = FastAPI(title="overlay-agent", docs_url=None, redoc_url=None)

    @app.get(
        AGENT_OVERLAY_PATH,
        response_class=JSONResponse,
        responses={200: _json(OverlayAnswer, "Our record, with local state")},
    )
    def overlay() -> JSONResponse:
        return JSONResponse(agent.overlay_document())

    @app.get(
        "/healthz",
        response_class=JSONResponse,
        responses={
            200: _json(HealthAnswer, "The agent is alive"),
            503: _json(HealthAnswer, "The agent loop or its kernel worker is stuck"),
        },
    )
    async def healthz() -> JSONResponse:
        problem = await agent.health()
        if problem is None:
            return JSONResponse({"status": "ok"})
        return JSONResponse({"status": "failing", "reason": problem}, status_code=503)

    @app.get(
        "/readyz",
        response_class=JSONResponse,
        responses={
            200: _json(ReadinessAnswer, "The kernel matches the latest state"),
            503: _json(ReadinessAnswer, "Not (yet) converged on the latest state"),
        },
    )
    def readyz() -> JSONResponse:
        ready = agent.ready()
        return JSONResponse({"ready": ready}, status_code=200 if ready else 503)

    @app.get(
        "/metrics",
        response_class=Response,
        responses={
            200: {
                "description": "Prometheus metrics",
                "content": {PROMETHEUS: {"schema": {"type": "string"}}},
            }
        },
    )
    def metrics() -> Response:
        agent.overlay_document()  # refreshes the per-bridge address gauges
        return Response(generate_latest(agent.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    return app


def _json(shape: Any, description: str) -> dict[str, Any]:
    return {"description": description, "content": {JSON: {"schema": json_schema(shape)}}}
