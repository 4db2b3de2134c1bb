"""How the master's routes are declared: token guards, documented answers, and the two ways a
route meets the log (a write through it, a linearizable read after a barrier).

``create_app`` (``api``) builds one ``Routes`` and hands it to each group of routes (``api``
itself: state, agents, probes; ``network_api``: networks and containers; ``cluster_api``;
``web``: the Networking page). The only place allocator refusals become HTTP statuses is
``REJECTION_STATUS``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, Literal, TypeVar

from fastapi import Depends, FastAPI, Path, Request
from fastapi.responses import Response

from overlay_master import compression, dcos_json, openapi
from overlay_master.allocator import Rejected, Result
from overlay_master.encoding import Snapshot
from overlay_master.http_edge import ApiError, ApiSettings, check_token
from overlay_master.replica import Replica
from overlay_wire.contract import JSON, REVISION_HEADER

Access = Literal["read", "write"]
Handler = TypeVar("Handler", bound=Callable[..., Any])
AgentIp = Annotated[
    str,
    Path(description="the agent's underlay IPv4 address", json_schema_extra={"format": "ipv4"}),
]
REJECTION_STATUS = {
    "unknown_agent": 404,
    "unknown_network": 404,
    "vtep_exhausted": 409,
    "vtep6_exhausted": 409,
    "network_changed": 409,
    "unknown_overlay": 409,  # the agent exists (not 404); the report conflicts with its overlays
    "network_exists": 409,
    "network_overlap": 409,
    "network_in_use": 409,
    "invalid_network": 422,
    "invalid_report": 422,
    "not_configured": 503,
    "internal_error": 500,
}


class Routes:
    """Declares routes on ``app`` for ``node`` with ``settings``' token rules."""

    def __init__(self, app: FastAPI, node: Replica, settings: ApiSettings) -> None:
        self.app, self.node, self.settings = app, node, settings

        async def require_token(request: Request) -> None:  # async: no thread-pool hop
            check_token(settings.token, request.headers.get("authorization", ""))

        async def require_read_token(request: Request) -> None:
            if settings.protect_reads:
                check_token(settings.token, request.headers.get("authorization", ""))

        self.guards = {"read": require_read_token, "write": require_token}
        self.secured = {
            "read": settings.token is not None and settings.protect_reads,
            "write": settings.token is not None,
        }

    def route(
        self,
        method: str,
        path: str,
        answers: dict[int | str, dict[str, Any]],
        access: Access | None = None,
        response_class: type[Response] = Response,
    ) -> Callable[[Handler], Handler]:
        """A route, guarded by the token its ``access`` needs, with every answer documented.

        Its OpenAPI ``operationId`` is the handler's name (``openapi.AGENT_LINKS`` use it)."""

        def add(handler: Handler) -> Handler:
            self.app.add_api_route(
                path,
                handler,
                methods=[method],
                operation_id=handler.__name__,
                response_model=None,
                response_class=response_class,
                dependencies=[Depends(self.guards[access])] if access is not None else None,
                responses=answers,
                openapi_extra=openapi.security(access is not None and self.secured[access]),
            )
            return handler

        return add

    def answers(
        self, ok: str, *errors: int, access: Access, success: int = 200
    ) -> dict[int | str, dict[str, Any]]:
        return openapi.responses(ok, *errors, secured=self.secured[access], success=success)

    async def linearizable(self, consistent: bool) -> Snapshot:
        """The state after a barrier (every write acknowledged before the read began), or the
        local copy when ``consistent`` is false."""
        if consistent:
            await self.node.sync(self.settings.read_timeout)
        snap = self.node.snapshot()
        if snap.network is None:
            raise ApiError(503, "not_configured", "no network config committed yet", retry=True)
        return snap

    async def write(self, command: dict[str, Any]) -> Result:
        """Commit ``command``; a refusal becomes its HTTP error."""
        result = await self.node.submit(command, self.settings.write_timeout)
        if isinstance(result, Rejected):
            status = REJECTION_STATUS.get(result.reason, 422)
            raise ApiError(status, result.reason, result.message, retry=status == 503)
        return result


def json_answer(body: bytes, revision: int, accept: str | None = None) -> Response:
    """``body`` with its revision; gzipped when big and ``accept`` (Accept-Encoding) allows."""
    headers = {REVISION_HEADER: str(revision)}
    body, encoding = compression.SHARED.encode(body, accept)
    if len(body) >= compression.MIN_BYTES or encoding is not None:
        headers["vary"] = "Accept-Encoding"
    if encoding is not None:
        headers["content-encoding"] = encoding
    return Response(body, media_type=JSON, headers=headers)


def doc_answer(doc: Any, revision: int) -> Response:
    return json_answer(dcos_json.dumps(doc), revision)
