"""``GET /overlay-master/watch``: the long poll, as a plain ASGI handler in front of FastAPI.

Thousands of agents park here; each answer is the same pre-encoded bytes, so the per-request
cost is the web stack's. Skipping FastAPI's routing, dependency and response machinery for this
one route cuts it by more than half (bench/findings.md); every other route stays FastAPI. The
semantics are docs/api.md's: answer at once if the revision is newer than ``since``, else when it
changes or after ``timeout`` seconds. A replica that has not applied ``since`` yet first catches
up through the log (a barrier), so a client failing over never goes back in time; a ``since``
that is still ahead after that was never a revision of this cluster, and gets the full state.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qs

from overlay_master import compression
from overlay_master.errors import NotReadyError
from overlay_master.http_edge import RETRY_AFTER, ApiError, ApiSettings, check_token, error_body
from overlay_master.replica import Replica
from overlay_wire.contract import JSON, REVISION_HEADER, WATCH_PATH

ALLOWED = "GET, HEAD"
# What the OpenAPI document promises, nothing more: ASCII digits, JSON's number syntax
# (int() and float() would also take " 7", "1_0", Unicode digits, "nan" and "inf").
INTEGER = re.compile(r"-?[0-9]+")
NUMBER = re.compile(r"-?[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?")


class WatchFastPath:
    """ASGI middleware: answers ``WATCH_PATH`` itself and passes everything else to ``app``."""

    PATH = WATCH_PATH

    def __init__(self, app: Any, node: Replica, settings: ApiSettings) -> None:
        self.app, self.node, self.settings = app, node, settings

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["path"] != self.PATH:
            await self.app(scope, receive, send)
            return
        status, body, revision = await self._answer(scope)
        encoding, big = None, False
        if status == 200:
            accept = dict(scope["headers"]).get(b"accept-encoding", b"").decode("latin-1")
            big = len(body) >= compression.MIN_BYTES
            body, encoding = compression.SHARED.encode(body, accept)
        headers = [(b"content-type", JSON.encode()), (b"content-length", str(len(body)).encode())]
        if status == 200 and big:
            headers.append((b"vary", b"Accept-Encoding"))
        if encoding is not None:
            headers.append((b"content-encoding", encoding.encode()))
        if revision is not None:
            headers.append((REVISION_HEADER.lower().encode(), str(revision).encode()))
        if status == 503:
            headers.append((b"retry-after", RETRY_AFTER.encode()))
        if status == 401:
            headers.append((b"www-authenticate", b"Bearer"))
        if status == 405:
            headers.append((b"allow", ALLOWED.encode()))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async def _answer(self, scope: Any) -> tuple[int, bytes, int | None]:
        if scope["method"] not in ("GET", "HEAD"):
            return _error(405, "method_not_allowed", f"use {ALLOWED}")
        if self.settings.protect_reads:
            header = dict(scope["headers"]).get(b"authorization", b"").decode("latin-1")
            try:
                check_token(self.settings.token, header)
            except ApiError as e:
                return _error(e.status, e.reason, e.message)
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)
        since_text = query.get("since", ["0"])[-1]
        timeout_text = query.get("timeout", ["30"])[-1]
        if not INTEGER.fullmatch(since_text) or not NUMBER.fullmatch(timeout_text):
            return _error(422, "invalid_request", "since must be an integer, timeout a number")
        include = query.get("include", ["none"])[-1]
        if include not in ("none", "containers"):
            return _error(422, "invalid_request", "include may only be containers")
        since, timeout = int(since_text), float(timeout_text)
        if since < 0 or not 0 <= timeout <= self.settings.max_watch_timeout:
            return _error(
                422,
                "invalid_request",
                f"since must be >= 0 and timeout between 0 and {self.settings.max_watch_timeout:g}",
            )
        if self.node.revision < since:
            # Either this replica lags behind the one the client last heard from, or ``since``
            # is not a revision of this cluster at all (its state was wiped and rebuilt). A
            # barrier tells them apart: once it is applied here, so is every committed revision.
            try:
                await self.node.sync(self.settings.read_timeout)
            except NotReadyError as e:
                return _error(503, "unavailable", f"{e}. Retry here or on another replica.")
        if self.node.revision >= since:
            await self.node.wait_revision_above(since, timeout)
        snap = self.node.watch_snapshot(since)
        if snap.network is None:
            return _error(503, "not_configured", "no network config committed yet")
        if snap.revision < since:
            since = 0  # a revision this cluster never had: the client must start over
        answer = self.node.encoding.watch_bytes(snap, since, containers=include == "containers")
        return 200, answer, snap.revision


def _error(status: int, reason: str, message: str) -> tuple[int, bytes, None]:
    return status, error_body(reason, message), None
