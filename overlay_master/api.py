"""``create_app(node)``: the master's HTTP API (docs/api.md). The only place errors become HTTP.

no quorum / unknown outcome -> 503 + Retry-After (retry the same request: it is idempotent)
exhaustion                 -> 409 with a machine-readable reason
bad input, bad JSON        -> 422
missing or wrong token     -> 401 (state-changing requests; reads too with protect_reads)
unknown agent or path      -> 404
wrong method               -> 405 + Allow

Every answer the routes can give is declared in the OpenAPI document (``openapi``); the watch is
served by ``watch.WatchFastPath`` in front of FastAPI, and metrics are collected in ``metrics``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException
from starlette.routing import Match

from overlay_master import allocator, openapi
from overlay_master.cluster_api import add_cluster_routes
from overlay_master.errors import NotReadyError
from overlay_master.http_edge import (
    RETRY_AFTER,
    ApiError,
    ApiSettings,
    check_ip,
    register_convertors,
)
from overlay_master.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from overlay_master.metrics import Metrics
from overlay_master.network_api import add_network_routes
from overlay_master.replica import Replica
from overlay_master.routing import AgentIp, Routes, json_answer
from overlay_master.schema import DeleteAgents, RegisterAgent, ReportStatus
from overlay_master.watch import WatchFastPath
from overlay_master.web import add_web_routes
from overlay_wire.contract import AGENTS_PATH, DELETE_AGENTS_PATH, LEADER_PATH, STATE_PATH

__all__ = ["ApiSettings", "create_app"]

AGENT_PATH = AGENTS_PATH + "/{ip:agent}"
STATUS_PATH = AGENTS_PATH + "/{ip:agent}/status"
# Starlette's own answers (routing, body parsing), in our error shape. A 400 is a body FastAPI
# could not even decode (not UTF-8, nested too deep): bad input like any other, so 422.
FRAMEWORK_ERRORS = {
    400: (422, "invalid_request", "body: not valid JSON (not UTF-8, or nested too deep)"),
    404: (404, "not_found", "no such path"),
    405: (405, "method_not_allowed", "method not allowed here"),
}


class MasterApp(FastAPI):
    """FastAPI with the watch handler outside every middleware: a parked long poll is answered
    without the error, telemetry and body-limit layers (thousands are answered per revision;
    the benchmarks' floor runs the same handler the same way). Anything else goes through."""

    watch: tuple[Replica, ApiSettings] | None = None

    def build_middleware_stack(self) -> Any:
        stack = super().build_middleware_stack()
        return stack if self.watch is None else WatchFastPath(stack, *self.watch)


def create_app(
    node: Replica, settings: ApiSettings, on_startup: Callable[[], Awaitable[None]] | None = None
) -> MasterApp:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        node.attach(asyncio.get_running_loop())
        if on_startup is not None:
            await on_startup()
        yield

    register_convertors()
    app = MasterApp(title="overlay-master", lifespan=lifespan, docs_url=None, redoc_url=None)
    metrics = Metrics(node)
    _error_handlers(app)

    routes = Routes(app, node, settings)
    route, answers, write, linearizable = (
        routes.route,
        routes.answers,
        routes.write,
        routes.linearizable,
    )
    add_network_routes(routes)
    add_cluster_routes(routes)
    add_web_routes(routes)

    def record_response(result: allocator.Registered | allocator.StatusRecorded) -> Response:
        network = node.network
        assert network is not None
        body = node.encoding.agent_bytes(result.agent, network)
        return json_answer(body, result.revision)

    @route("GET", STATE_PATH, answers("ClusterStateDoc", 422, 503, access="read"), "read")
    async def state(request: Request, consistent: bool = True) -> Response:
        snap = await linearizable(consistent)
        accept = request.headers.get("accept-encoding")
        return json_answer(node.encoding.state_bytes(snap), snap.revision, accept)

    @route("POST", AGENTS_PATH, answers("AgentDoc", 409, 422, 500, 503, access="write"), "write")
    async def register(body: RegisterAgent) -> Response:
        check_ip(body.ip)
        result = await write(allocator.register(body.ip, body.mesos_bridge, body.docker_bridge))
        assert isinstance(result, allocator.Registered)
        return record_response(result)

    @route("GET", AGENT_PATH, answers("AgentDoc", 404, 422, 503, access="read"), "read")
    async def agent(ip: AgentIp, consistent: bool = True) -> Response:
        canonical = check_ip(ip)
        await linearizable(consistent)
        network, record = node.record(canonical)
        if record is None or network is None:
            raise ApiError(404, "unknown_agent", f"agent {ip} is not registered")
        return json_answer(node.encoding.agent_bytes(record, network), record.revision)

    @route(
        "PUT", STATUS_PATH, answers("AgentDoc", 404, 409, 422, 500, 503, access="write"), "write"
    )
    async def status(ip: AgentIp, body: ReportStatus) -> Response:
        canonical = check_ip(ip)
        reports = [o.model_dump(mode="json", exclude_none=True) for o in body.overlays]
        result = await write(allocator.report_status(canonical, reports))
        assert isinstance(result, allocator.StatusRecorded)
        return record_response(result)

    @route(
        "POST",
        DELETE_AGENTS_PATH,
        answers("ClusterStateDoc", 422, 500, 503, access="write"),
        "write",
    )
    async def delete(request: Request, body: DeleteAgents) -> Response:
        for ip in body.agents:
            check_ip(ip)
        result = await write(allocator.delete(body.agents))
        assert isinstance(result, allocator.Deleted)
        snap = node.snapshot()
        accept = request.headers.get("accept-encoding")
        return json_answer(node.encoding.state_bytes(snap), snap.revision, accept)

    # -- cluster ------------------------------------------------------------------------------

    @route("GET", LEADER_PATH, openapi.responses("Leader", revision=False))
    async def leader() -> Response:
        body = {"leader": node.leader(), "self": node.self_address, "role": node.role()}
        return JSONResponse(body)

    @route("GET", "/healthz", openapi.probe("Liveness", "The Raft tick thread is not running."))
    async def healthz() -> Response:
        alive = node.alive()
        return JSONResponse({"alive": alive}, 200 if alive else 503)

    @route("GET", "/readyz", openapi.probe("Readiness", "Not ready; `reason` says why."))
    async def readyz() -> Response:
        ready, why = node.ready()
        body = {"ready": ready, "reason": why, "config_drift": node.drift}
        return JSONResponse(body, 200 if ready else 503)

    @route("GET", "/metrics", openapi.prometheus(), response_class=PrometheusText)
    async def prometheus() -> Response:
        return PrometheusText(metrics.text())

    app.watch = (node, settings)
    openapi.install(app, settings)
    return app


def _error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def api_error(_: Request, e: ApiError) -> JSONResponse:
        headers = {"Retry-After": RETRY_AFTER} if e.retry else {}
        if e.status == 401:
            headers["WWW-Authenticate"] = "Bearer"
        return _error(e.status, e.reason, e.message, headers)

    @app.exception_handler(NotReadyError)
    async def not_ready(_: Request, e: NotReadyError) -> JSONResponse:
        message = f"{e}. Retry the same request; it is safe to repeat."
        return _error(503, "unavailable", message, {"Retry-After": RETRY_AFTER})

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, e: RequestValidationError) -> JSONResponse:
        return _error(422, "invalid_request", "; ".join(_problem(err) for err in e.errors()))

    @app.exception_handler(HTTPException)
    async def framework(request: Request, e: HTTPException) -> JSONResponse:
        status, reason, message = FRAMEWORK_ERRORS.get(
            e.status_code, (e.status_code, "http_error", str(e.detail))
        )
        headers = dict(e.headers or {})
        if status == 405:  # Starlette names only the first route of the path in Allow
            headers["Allow"] = ", ".join(_allowed(app, request.scope))
        return _error(status, reason, message, headers)


def _allowed(app: FastAPI, scope: Any) -> list[str]:
    """Every method some route of this path answers (several routes may share a path)."""
    methods: set[str] = set()
    for route in app.router.routes:
        if isinstance(route, APIRoute) and route.matches(scope)[0] != Match.NONE:
            methods |= route.methods or set()
    return sorted(methods)


def _problem(error: Any) -> str:
    """One validation problem in plain words, naming where it is."""
    if error.get("type") == "json_invalid":
        where = error["loc"][-1]
        return f"body: not valid JSON at character {where}: {error.get('ctx', {}).get('error')}"
    return f"{'.'.join(str(p) for p in error['loc'])}: {error['msg']}"


def _error(
    status: int, reason: str, message: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    return JSONResponse({"error": reason, "message": message}, status, headers=headers)


class PrometheusText(Response):
    media_type = METRICS_CONTENT_TYPE
