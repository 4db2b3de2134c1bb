"""Talks to the masters (docs/api.md): register, long-poll watch, status reports.

Every replica answers every request, so the client simply sticks to one master until it fails
(connection error, timeout, 5xx/503) and then moves on to the next, sleeping a capped, jittered
("full jitter") exponential backoff between attempts, or the master's ``Retry-After`` when it
gave one (capped too). Retryable failures are retried forever: a data plane keeps running while
the masters are away, and the agent catches up when one answers. A 401 raises ``Unauthorized``,
other 4xx raise ``Rejected``: repeating those requests would not help.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx

from overlay_agent.errors import MasterError, Rejected, Unauthorized

log = logging.getLogger(__name__)

CONNECT_TIMEOUT = 3.0
REQUEST_TIMEOUT = 10.0
WATCH_SLACK = 10.0  # read timeout of a long-poll = its server-side timeout + this


@dataclass
class Backoff:
    """Full-jitter exponential backoff: uniform(0, min(cap, base * 2**n))."""

    base: float = 0.1
    cap: float = 5.0
    rng: random.Random = field(default_factory=random.Random)
    failures: int = 0

    def next(self) -> float:
        ceiling = min(self.cap, self.base * (2 ** min(self.failures, 30)))
        self.failures += 1
        return self.rng.uniform(0, ceiling)

    def reset(self) -> None:
        self.failures = 0


Sleep = Callable[[float], Awaitable[None]]


class MasterClient:
    """Failover HTTP client for a list of master base URLs."""

    def __init__(
        self,
        urls: Sequence[str],
        token: str | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        backoff: Backoff | None = None,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        if not urls:
            raise ValueError("at least one master URL is needed")
        self.urls = [u.rstrip("/") for u in urls]
        self.current = 0
        self.backoff = backoff or Backoff()
        self.failures = 0  # retryable failures seen, for metrics
        self._sleep = sleep
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._http = httpx.AsyncClient(
            headers=headers,
            transport=transport,
            timeout=httpx.Timeout(REQUEST_TIMEOUT, connect=CONNECT_TIMEOUT),
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    @property
    def master(self) -> str:
        return self.urls[self.current]

    async def register(self, ip: str, mesos_bridge: bool, docker_bridge: bool) -> dict[str, Any]:
        body = {"ip": ip, "mesos_bridge": mesos_bridge, "docker_bridge": docker_bridge}
        return await self._request("POST", "/overlay-master/agents", json=body)

    async def watch(self, since: int, timeout: float) -> dict[str, Any]:
        params = {"since": str(since), "timeout": str(int(timeout))}
        read = httpx.Timeout(timeout + WATCH_SLACK, connect=CONNECT_TIMEOUT)
        return await self._request("GET", "/overlay-master/watch", params=params, timeout=read)

    async def report_status(self, ip: str, overlays: list[dict[str, str]]) -> dict[str, Any]:
        path = f"/overlay-master/agents/{ip}/status"
        return await self._request("PUT", path, json={"overlays": overlays})

    async def request(
        self, method: str, path: str, give_up_after: float | None = None, **kwargs: Any
    ) -> dict[str, Any]:
        """Any API request, retried like the agent's own (failover, backoff, ``Retry-After``);
        with ``give_up_after`` seconds, a ``MasterError`` once that time has passed."""
        deadline = None if give_up_after is None else time.monotonic() + give_up_after
        return await self._request(method, path, deadline=deadline, **kwargs)

    async def report_containers(self, ip: str, containers: list[dict[str, str]]) -> dict[str, Any]:
        path = f"/overlay-master/agents/{ip}/containers"
        return await self._request("PUT", path, json={"containers": containers})

    async def _request(
        self, method: str, path: str, deadline: float | None = None, **kwargs: Any
    ) -> dict[str, Any]:
        while True:
            url = self.master + path
            try:
                response = await self._http.request(method, url, **kwargs)
            except httpx.TransportError as e:
                await self._failed(f"{method} {url}: {type(e).__name__} {e}", None, deadline)
                continue
            if response.status_code < 300:
                self.backoff.reset()
                return _json(response)
            if response.status_code >= 500:
                what = f"{method} {url}: {response.status_code} {_reason(response)}"
                await self._failed(what, response.headers, deadline)
                continue
            raise _client_error(response)

    async def _failed(
        self, what: str, headers: Mapping[str, str] | None, deadline: float | None = None
    ) -> None:
        """Move to the next master and wait before the next attempt."""
        self.failures += 1
        self.current = (self.current + 1) % len(self.urls)
        delay = self.backoff.next()
        retry_after = _retry_after(headers)
        if retry_after is not None:
            delay = max(delay, min(retry_after, self.backoff.cap))
        if deadline is not None and time.monotonic() + delay > deadline:
            raise MasterError(f"no master answered in time; last: {what}")
        log.info("%s; trying %s in %.2fs", what, self.master, delay)
        await self._sleep(delay)


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        doc = response.json()
    except ValueError as e:
        raise MasterError(f"{response.request.url}: answer is not JSON") from e
    if not isinstance(doc, dict):
        raise MasterError(f"{response.request.url}: answer is not a JSON object")
    return doc


def _reason(response: httpx.Response) -> str:
    try:
        doc = response.json()
    except ValueError:
        return ""
    return str(doc.get("message", "")) if isinstance(doc, dict) else ""


def _client_error(response: httpx.Response) -> MasterError:
    try:
        doc = response.json()
    except ValueError:
        doc = {}
    reason = str(doc.get("error", "")) if isinstance(doc, dict) else ""
    message = str(doc.get("message", response.text)) if isinstance(doc, dict) else response.text
    if response.status_code == 401:
        return Unauthorized(f"{response.request.url}: 401 {message}")
    return Rejected(response.status_code, reason, message)


def _retry_after(headers: Mapping[str, str] | None) -> float | None:
    if headers is None or "retry-after" not in headers:
        return None
    try:
        return max(float(headers["retry-after"]), 0.0)
    except ValueError:
        return None
