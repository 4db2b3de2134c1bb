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
from typing import Annotated, Any, Literal, TypeVar

from fastapi import Depends, FastAPI, Path, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException

from overlay_master import allocator, dcos_json, openapi
from overlay_master.allocator import Rejected, Result
from overlay_master.encoding import Snapshot
from overlay_master.errors import NotReadyError
from overlay_master.http_edge import (
    RETRY_AFTER,
    ApiError,
    ApiSettings,
    check_ip,
    check_token,
    register_convertors,
)
from overlay_master.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from overlay_master.metrics import Metrics
from overlay_master.network_docs import network_doc, network_list
from overlay_master.network_edits import parse_new_network
from overlay_master.replica import Replica
from overlay_master.schema import (
    AddNetwork,
    DeleteAgents,
    RegisterAgent,
    ReportStatus,
    UpdateNetwork,
)
from overlay_master.watch import WatchFastPath
from overlay_wire.contract import (
    AGENTS_PATH,
    DELETE_AGENTS_PATH,
    JSON,
    LEADER_PATH,
    NETWORKS_PATH,
    REVISION_HEADER,
    STATE_PATH,
)

__all__ = ["ApiSettings", "create_app"]

AGENT_PATH = AGENTS_PATH + "/{ip:agent}"
STATUS_PATH = AGENTS_PATH + "/{ip:agent}/status"
NETWORK_PATH = NETWORKS_PATH + "/{name}"
REJECTION_STATUS = {
    "unknown_network": 404,
    "network_exists": 409,
    "network_overlap": 409,
    "network_in_use": 409,
    "invalid_network": 422,
    "vtep_exhausted": 409,
    "vtep6_exhausted": 409,
    "network_changed": 409,
    "unknown_agent": 404,
    "unknown_overlay": 409,  # the agent exists (not 404); the report conflicts with its overlays
    "not_configured": 503,
    "internal_error": 500,
}
# Starlette's own answers (routing, body parsing), in our error shape. A 400 is a body FastAPI
# could not even decode (not UTF-8, nested too deep): bad input like any other, so 422.
FRAMEWORK_ERRORS = {
    400: (422, "invalid_request", "body: not valid JSON (not UTF-8, or nested too deep)"),
    404: (404, "not_found", "no such path"),
    405: (405, "method_not_allowed", "method not allowed here"),
}

Access = Literal["read", "write"]
Handler = TypeVar("Handler", bound=Callable[..., Any])
NetworkName = Annotated[str, Path(description="the network's name", max_length=64)]
AgentIp = Annotated[
    str,
    Path(description="the agent's underlay IPv4 address", json_schema_extra={"format": "ipv4"}),
]


def create_app(
    node: Replica, settings: ApiSettings, on_startup: Callable[[], Awaitable[None]] | None = None
) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        node.attach(asyncio.get_running_loop())
        if on_startup is not None:
            await on_startup()
        yield

    register_convertors()
    app = FastAPI(title="overlay-master", lifespan=lifespan, docs_url=None, redoc_url=None)
    metrics = Metrics(node)
    _error_handlers(app)

    async def require_token(request: Request) -> None:  # async: no thread-pool hop per request
        check_token(settings.token, request.headers.get("authorization", ""))

    async def require_read_token(request: Request) -> None:
        if settings.protect_reads:
            check_token(settings.token, request.headers.get("authorization", ""))

    guards = {"read": require_read_token, "write": require_token}
    secured = {
        "read": settings.token is not None and settings.protect_reads,
        "write": settings.token is not None,
    }

    def route(
        method: str,
        path: str,
        answers: dict[int | str, dict[str, Any]],
        access: Access | None = None,
        response_class: type[Response] = Response,
    ) -> Callable[[Handler], Handler]:
        """A route, guarded by the token its ``access`` needs, with every answer documented.

        Its OpenAPI ``operationId`` is the handler's name (``openapi.AGENT_LINKS`` use it)."""

        def add(handler: Handler) -> Handler:
            app.add_api_route(
                path,
                handler,
                methods=[method],
                operation_id=handler.__name__,
                response_model=None,
                response_class=response_class,
                dependencies=[Depends(guards[access])] if access is not None else None,
                responses=answers,
                openapi_extra=openapi.security(access is not None and secured[access]),
            )
            return handler

        return add

    def answers(
        ok: str, *errors: int, access: Access, success: int = 200
    ) -> dict[int | str, dict[str, Any]]:
        return openapi.responses(ok, *errors, secured=secured[access], success=success)

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

    @route("GET", STATE_PATH, answers("ClusterStateDoc", 422, 503, access="read"), "read")
    async def state(consistent: bool = True) -> Response:
        snap = await linearizable(consistent)
        return _json(node.encoding.state_bytes(snap), snap.revision)

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
        return _json(node.encoding.agent_bytes(record, network), record.revision)

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
    async def delete(body: DeleteAgents) -> Response:
        for ip in body.agents:
            check_ip(ip)
        result = await write(allocator.delete(body.agents))
        assert isinstance(result, allocator.Deleted)
        snap = node.snapshot()
        return _json(node.encoding.state_bytes(snap), snap.revision)

    # -- networks ---------------------------------------------------------------------------

    def one_network(name: str, snap: Snapshot) -> Response:
        assert snap.network is not None
        config = snap.network.overlay(name)
        if config is None:
            raise ApiError(404, "unknown_network", f"there is no network {name!r}")
        return _doc(network_doc(config, snap.agents), snap.revision)

    @route("GET", NETWORKS_PATH, answers("NetworkListDoc", 422, 503, access="read"), "read")
    async def networks(consistent: bool = True) -> Response:
        snap = await linearizable(consistent)
        return _doc(network_list(snap), snap.revision)

    @route("GET", NETWORK_PATH, answers("VirtualNetworkDoc", 404, 422, 503, access="read"), "read")
    async def network(name: NetworkName, consistent: bool = True) -> Response:
        return one_network(name, await linearizable(consistent))

    @route(
        "POST",
        NETWORKS_PATH,
        answers("VirtualNetworkDoc", 409, 422, 500, 503, access="write", success=201),
        "write",
    )
    async def add_network(body: AddNetwork) -> Response:
        plain = body.model_dump(mode="json", exclude_none=True)
        known = node.network
        if known is not None:  # a quick answer; the log checks again on the state it meets
            _, problems, conflicts = parse_new_network(plain, known)
            if problems or conflicts:
                status = 422 if problems else 409
                reason = (
                    "invalid_network"
                    if problems
                    else ("network_exists" if conflicts[0].field == "name" else "network_overlap")
                )
                raise ApiError(status, reason, "; ".join(str(p) for p in problems or conflicts))
        result = await write(allocator.add_network(plain))
        assert isinstance(result, allocator.NetworkChanged)
        answer = one_network(result.name, node.snapshot())
        answer.status_code = 201
        return answer

    @route(
        "PATCH",
        NETWORK_PATH,
        answers("VirtualNetworkDoc", 404, 422, 500, 503, access="write"),
        "write",
    )
    async def update_network(name: NetworkName, body: UpdateNetwork) -> Response:
        command = allocator.update_network(name, body.enabled, body.allow_from)
        result = await write(command)
        assert isinstance(result, allocator.NetworkChanged)
        return one_network(result.name, node.snapshot())

    @route(
        "DELETE",
        NETWORK_PATH,
        answers("NetworkDeletedDoc", 404, 409, 422, 500, 503, access="write"),
        "write",
    )
    async def delete_network(name: NetworkName, force: bool = False) -> Response:
        result = await write(allocator.delete_network(name, force))
        assert isinstance(result, allocator.NetworkChanged)
        body = {"name": result.name, "revision": result.revision, "agents": list(result.agents)}
        return _doc(body, result.revision)

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

    app.add_middleware(WatchFastPath, node=node, settings=settings)
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
    async def framework(_: Request, e: HTTPException) -> JSONResponse:
        status, reason, message = FRAMEWORK_ERRORS.get(
            e.status_code, (e.status_code, "http_error", str(e.detail))
        )
        return _error(status, reason, message, dict(e.headers or {}))


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


def _doc(doc: Any, revision: int) -> Response:
    return _json(dcos_json.dumps(doc), revision)


def _json(body: bytes, revision: int) -> Response:
    return Response(body, media_type=JSON, headers={REVISION_HEADER: str(revision)})
