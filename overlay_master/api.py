"""``create_app(node)``: the master's HTTP API (docs/api.md). The only place errors become HTTP.

no quorum / unknown outcome -> 503 + Retry-After (retry the same request: it is idempotent)
exhaustion                 -> 409 with a machine-readable reason
bad input                  -> 422
missing or wrong token     -> 401 (state-changing requests; reads too with protect_reads)
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response

from overlay_master import allocator
from overlay_master.allocator import Rejected, Result
from overlay_master.encoding import Snapshot
from overlay_master.errors import NotReadyError
from overlay_master.http_edge import RETRY_AFTER, ApiError, ApiSettings, check_ip, check_token
from overlay_master.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from overlay_master.metrics import Metrics
from overlay_master.replica import Replica
from overlay_master.schema import DeleteAgents, RegisterAgent, ReportStatus
from overlay_master.watch import WatchFastPath
from overlay_wire.contract import JSON, REVISION_HEADER

__all__ = ["ApiSettings", "create_app"]

REJECTION_STATUS = {
    "vtep_exhausted": 409,
    "vtep6_exhausted": 409,
    "network_changed": 409,
    "unknown_agent": 404,
    "not_configured": 503,
    "internal_error": 500,
}


def create_app(
    node: Replica, settings: ApiSettings, on_startup: Callable[[], Awaitable[None]] | None = None
) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        node.attach(asyncio.get_running_loop())
        if on_startup is not None:
            await on_startup()
        yield

    app = FastAPI(title="overlay-master", lifespan=lifespan, docs_url=None, redoc_url=None)
    metrics = Metrics(node)

    async def require_token(request: Request) -> None:  # async: no thread-pool hop per request
        check_token(settings.token, request.headers.get("authorization", ""))

    async def require_read_token(request: Request) -> None:
        if settings.protect_reads:
            check_token(settings.token, request.headers.get("authorization", ""))

    @app.exception_handler(ApiError)
    async def api_error(_: Request, e: ApiError) -> JSONResponse:
        headers = {"Retry-After": RETRY_AFTER} if e.retry else {}
        if e.status == 401:
            headers["WWW-Authenticate"] = "Bearer"
        return JSONResponse({"error": e.reason, "message": e.message}, e.status, headers=headers)

    @app.exception_handler(NotReadyError)
    async def not_ready(_: Request, e: NotReadyError) -> JSONResponse:
        body = {
            "error": "unavailable",
            "message": f"{e}. Retry the same request; it is safe to repeat.",
        }
        return JSONResponse(body, 503, headers={"Retry-After": RETRY_AFTER})

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, e: RequestValidationError) -> JSONResponse:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in e.errors()
        )
        return JSONResponse({"error": "invalid_request", "message": problems}, 422)

    async def linearizable(consistent: bool) -> Snapshot:
        if consistent:
            await node.sync(settings.read_timeout)
        snap = node.snapshot()
        if snap.network is None:
            raise ApiError(503, "not_configured", "no network config committed yet", retry=True)
        return snap

    async def write(command: dict[str, Any]) -> Result:
        result = await node.submit(command, settings.write_timeout)
        if isinstance(result, Rejected):
            status = REJECTION_STATUS.get(result.reason, 422)
            raise ApiError(status, result.reason, result.message, retry=status == 503)
        return result

    def record_response(result: allocator.Registered | allocator.StatusRecorded) -> Response:
        network = node.network
        assert network is not None
        body = node.encoding.agent_bytes(result.agent, network)
        return _json(body, result.revision)

    @app.get("/overlay-master/state", dependencies=[Depends(require_read_token)])
    async def state(consistent: bool = True) -> Response:
        snap = await linearizable(consistent)
        return _json(node.encoding.state_bytes(snap), snap.revision)

    @app.post("/overlay-master/agents", dependencies=[Depends(require_token)])
    async def register(body: RegisterAgent) -> Response:
        check_ip(body.ip)
        result = await write(allocator.register(body.ip, body.mesos_bridge, body.docker_bridge))
        assert isinstance(result, allocator.Registered)
        return record_response(result)

    @app.get("/overlay-master/agents/{ip}", dependencies=[Depends(require_read_token)])
    async def agent(ip: str, consistent: bool = True) -> Response:
        canonical = check_ip(ip)
        await linearizable(consistent)
        network, record = node.record(canonical)
        if record is None or network is None:
            raise ApiError(404, "unknown_agent", f"agent {ip} is not registered")
        return _json(node.encoding.agent_bytes(record, network), record.revision)

    @app.put("/overlay-master/agents/{ip}/status", dependencies=[Depends(require_token)])
    async def status(ip: str, body: ReportStatus) -> Response:
        canonical = check_ip(ip)
        reports = [o.model_dump(mode="json", exclude_none=True) for o in body.overlays]
        result = await write(allocator.report_status(canonical, reports))
        assert isinstance(result, allocator.StatusRecorded)
        return record_response(result)

    @app.post("/overlay-master/agents/delete", dependencies=[Depends(require_token)])
    async def delete(body: DeleteAgents) -> Response:
        for ip in body.agents:
            check_ip(ip)
        result = await write(allocator.delete(body.agents))
        assert isinstance(result, allocator.Deleted)
        snap = node.snapshot()
        return _json(node.encoding.state_bytes(snap), snap.revision)

    @app.get("/overlay-master/leader")
    async def leader() -> dict[str, Any]:
        return {"leader": node.leader(), "self": node.self_address, "role": node.role()}

    @app.get("/healthz")
    async def healthz() -> Response:
        alive = node.alive()
        return JSONResponse({"alive": alive}, 200 if alive else 503)

    @app.get("/readyz")
    async def readyz() -> Response:
        ready, why = node.ready()
        return JSONResponse({"ready": ready, "reason": why}, 200 if ready else 503)

    app.add_middleware(WatchFastPath, node=node, settings=settings)

    @app.get("/metrics")
    async def prometheus() -> Response:
        return Response(metrics.text(), media_type=METRICS_CONTENT_TYPE)

    return app


def _json(body: bytes, revision: int) -> Response:
    return Response(body, media_type=JSON, headers={REVISION_HEADER: str(revision)})
