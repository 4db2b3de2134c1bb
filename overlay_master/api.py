"""``create_app(node)``: the master's HTTP API (docs/api.md). The only place errors become HTTP.

no quorum / unknown outcome -> 503 + Retry-After (retry the same request: it is idempotent)
exhaustion                 -> 409 with a machine-readable reason
bad input                  -> 422
missing or wrong token     -> 401 (state-changing requests; reads too with protect_reads)
"""

from __future__ import annotations

import hmac
import ipaddress
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from overlay_master import allocator
from overlay_master.allocator import Rejected, Result
from overlay_master.errors import NotReadyError
from overlay_master.node import Node, Snapshot
from overlay_master.schema import DeleteAgents, RegisterAgent, ReportStatus

JSON = "application/json"
RETRY_AFTER = "1"
REJECTION_STATUS = {
    "vtep_exhausted": 409,
    "vtep6_exhausted": 409,
    "network_changed": 409,
    "unknown_agent": 404,
    "not_configured": 503,
    "internal_error": 500,
}


@dataclass(frozen=True)
class ApiSettings:
    token: str | None = None
    protect_reads: bool = False
    write_timeout: float = 5.0
    read_timeout: float = 3.0
    max_watch_timeout: float = 300.0


class ApiError(Exception):
    def __init__(self, status: int, reason: str, message: str, retry: bool = False) -> None:
        super().__init__(message)
        self.status, self.reason, self.message, self.retry = status, reason, message, retry


def create_app(
    node: Node, settings: ApiSettings, on_startup: Callable[[], Awaitable[None]] | None = None
) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        import asyncio

        node.attach(asyncio.get_running_loop())
        if on_startup is not None:
            await on_startup()
        yield

    app = FastAPI(title="overlay-master", lifespan=lifespan, docs_url=None, redoc_url=None)
    registry = CollectorRegistry()
    registry.register(_Metrics(node))

    async def require_token(request: Request) -> None:  # async: no thread-pool hop per request
        _check_token(settings.token, request.headers.get("authorization", ""))

    async def require_read_token(request: Request) -> None:
        if settings.protect_reads:
            _check_token(settings.token, request.headers.get("authorization", ""))

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
        body = node.agent_bytes(result.agent, network)
        return _json(body, result.revision)

    @app.get("/overlay-master/state", dependencies=[Depends(require_read_token)])
    async def state(consistent: bool = True) -> Response:
        snap = await linearizable(consistent)
        return _json(node.state_bytes(snap), snap.revision)

    @app.post("/overlay-master/agents", dependencies=[Depends(require_token)])
    async def register(body: RegisterAgent) -> Response:
        _check_ip(body.ip)
        result = await write(allocator.register(body.ip, body.mesos_bridge, body.docker_bridge))
        assert isinstance(result, allocator.Registered)
        return record_response(result)

    @app.get("/overlay-master/agents/{ip}", dependencies=[Depends(require_read_token)])
    async def agent(ip: str, consistent: bool = True) -> Response:
        canonical = _check_ip(ip)
        await linearizable(consistent)
        network, record = node.record(canonical)
        if record is None or network is None:
            raise ApiError(404, "unknown_agent", f"agent {ip} is not registered")
        return _json(node.agent_bytes(record, network), record.revision)

    @app.put("/overlay-master/agents/{ip}/status", dependencies=[Depends(require_token)])
    async def status(ip: str, body: ReportStatus) -> Response:
        canonical = _check_ip(ip)
        reports = [o.model_dump(mode="json", exclude_none=True) for o in body.overlays]
        result = await write(allocator.report_status(canonical, reports))
        assert isinstance(result, allocator.StatusRecorded)
        return record_response(result)

    @app.post("/overlay-master/agents/delete", dependencies=[Depends(require_token)])
    async def delete(body: DeleteAgents) -> Response:
        for ip in body.agents:
            _check_ip(ip)
        result = await write(allocator.delete(body.agents))
        assert isinstance(result, allocator.Deleted)
        snap = node.snapshot()
        return _json(node.state_bytes(snap), snap.revision)

    @app.get("/overlay-master/leader")
    async def leader() -> dict[str, Any]:
        return {"leader": node.leader(), "self": node.raft.self_address, "role": node.role()}

    @app.get("/healthz")
    async def healthz() -> Response:
        alive = node.syncobj.tick_thread_alive()
        return JSONResponse({"alive": alive}, 200 if alive else 503)

    @app.get("/readyz")
    async def readyz() -> Response:
        ready, why = node.ready()
        body = {"ready": ready, "reason": why, "config_drift": node.drift}
        return JSONResponse(body, 200 if ready else 503)

    app.add_middleware(WatchFastPath, node=node, settings=settings)

    @app.get("/metrics")
    async def metrics() -> Response:
        return Response(generate_latest(registry), media_type="text/plain; version=0.0.4")

    return app


class WatchFastPath:
    """``GET /overlay-master/watch`` as a plain ASGI handler in front of the FastAPI app.

    Thousands of agents park here; each answer is the same pre-encoded bytes, so the per-request
    cost is the web stack's. Skipping FastAPI's routing, dependency and response machinery for
    this one route cuts it by more than half (bench/findings.md); every other route stays FastAPI.
    The semantics are docs/api.md's: answer at once if the revision is newer than ``since``,
    else when it changes or after ``timeout`` seconds; never answer with an older revision.
    """

    PATH = "/overlay-master/watch"

    def __init__(self, app: Any, node: Node, settings: ApiSettings) -> None:
        self.app, self.node, self.settings = app, node, settings

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["path"] != self.PATH:
            await self.app(scope, receive, send)
            return
        status, body, revision = await self._answer(scope)
        headers = [(b"content-type", JSON.encode()), (b"content-length", str(len(body)).encode())]
        if revision is not None:
            headers.append((b"x-overlay-revision", str(revision).encode()))
        if status == 503:
            headers.append((b"retry-after", RETRY_AFTER.encode()))
        if status == 401:
            headers.append((b"www-authenticate", b"Bearer"))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async def _answer(self, scope: Any) -> tuple[int, bytes, int | None]:
        if scope["method"] not in ("GET", "HEAD"):
            return _error(405, "method_not_allowed", "use GET")
        if self.settings.protect_reads:
            header = dict(scope["headers"]).get(b"authorization", b"").decode("latin-1")
            try:
                _check_token(self.settings.token, header)
            except ApiError as e:
                return _error(e.status, e.reason, e.message)
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        try:
            since = int(query.get("since", ["0"])[-1])
            timeout = float(query.get("timeout", ["30"])[-1])
        except ValueError:
            return _error(422, "invalid_request", "since must be an integer, timeout a number")
        if since < 0 or not 0 <= timeout <= self.settings.max_watch_timeout:
            return _error(
                422,
                "invalid_request",
                f"since must be >= 0 and timeout between 0 and {self.settings.max_watch_timeout:g}",
            )
        await self.node.wait_revision_above(since, timeout)
        snap = self.node.snapshot()
        if snap.network is None:
            return _error(503, "not_configured", "no network config committed yet")
        if snap.revision < since:
            return _error(
                503,
                "behind",
                f"this replica has applied revision {snap.revision}, older than {since}; "
                "retry here or on another replica",
            )
        return 200, self.node.watch_bytes(snap, since), snap.revision


def _error(status: int, reason: str, message: str) -> tuple[int, bytes, None]:
    return status, json.dumps({"error": reason, "message": message}).encode(), None


def _json(body: bytes, revision: int) -> Response:
    return Response(body, media_type=JSON, headers={"X-Overlay-Revision": str(revision)})


def _check_ip(ip: str) -> str:
    try:
        return str(ipaddress.IPv4Address(ip))
    except ValueError:
        raise ApiError(422, "invalid_ip", f"{ip!r} is not an IPv4 address") from None


def _check_token(token: str | None, header: str) -> None:
    if token is None:
        return
    scheme, _, given = header.partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip(), token):
        raise ApiError(401, "unauthorized", "missing or wrong bearer token")


class _Metrics(Collector):
    """Reads the node on every scrape; nothing is updated on the hot path."""

    def __init__(self, node: Node) -> None:
        self.node = node

    def collect(self) -> Any:
        status = self.node.status()
        role = GaugeMetricFamily(
            "overlay_master_raft_role", "1 for this replica's role", labels=["role"]
        )
        current = self.node.role(status)
        for name in ("follower", "candidate", "leader"):
            role.add_metric([name], 1.0 if current == name else 0.0)
        yield role
        for key, name in (
            ("raft_term", "term"),
            ("commit_idx", "commit_index"),
            ("last_applied", "applied_index"),
        ):
            yield GaugeMetricFamily(
                f"overlay_master_raft_{name}", f"Raft {name}", value=status.get(key, 0)
            )
        state = self.node.pools()
        yield GaugeMetricFamily("overlay_master_revision", "state revision", value=state.revision)
        yield GaugeMetricFamily(
            "overlay_master_agents", "registered agents", value=len(state.agents)
        )
        yield from _pool_metrics(state)


def _pool_metrics(state: allocator.ClusterState) -> Any:
    blocks = {
        kind: GaugeMetricFamily(
            f"overlay_master_blocks_{kind}",
            f"agent blocks {kind} per overlay",
            labels=["overlay", "family"],
        )
        for kind in ("total", "used", "free")
    }
    for family, pools in (("ipv4", state.blocks), ("ipv6", state.blocks6)):
        for name, pool in list(pools.items()):
            for kind, value in (("total", pool.size), ("used", pool.used), ("free", pool.free)):
                blocks[kind].add_metric([name, family], float(value))
    yield from blocks.values()
    vteps = {
        kind: GaugeMetricFamily(
            f"overlay_master_vteps_{kind}", f"VTEP addresses {kind}", labels=["family"]
        )
        for kind in ("total", "used", "free")
    }
    for family, vtep_pool in (("ipv4", state.vteps), ("ipv6", state.vteps6)):
        if vtep_pool is not None:
            for kind, value in (
                ("total", vtep_pool.size),
                ("used", vtep_pool.used),
                ("free", vtep_pool.free),
            ):
                vteps[kind].add_metric([family], float(value))
    yield from vteps.values()
