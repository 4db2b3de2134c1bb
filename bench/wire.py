"""A light asyncio client: HTTP/1.1 keep-alive requests and the raw counter's line protocol.

httpx costs hundreds of microseconds per request, which would make the client the bottleneck
with thousands of watchers on two cores. This client is an ``asyncio.Protocol`` that parses only
the status line, ``Content-Length`` and the headers asked for, and stamps each answer with the
moment its last byte arrived. It understands only what uvicorn sends us (Content-Length bodies).
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass
from typing import Any


class WireError(Exception):
    """The connection closed or answered something this client does not parse."""


@dataclass
class Answer:
    status: int
    headers: dict[str, str]  # lower-case names
    body: bytes
    arrived: float  # time.monotonic() when the last byte was read

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def revision(self) -> int:
        return int(self.headers["x-overlay-revision"])


class HttpConnection(asyncio.Protocol):
    """One keep-alive connection; one request at a time."""

    def __init__(self, host: str) -> None:
        self.host = host
        self.transport: asyncio.Transport | None = None
        self._buffer = bytearray()
        self._head: tuple[int, dict[str, str], int] | None = None
        self._waiter: asyncio.Future[Answer] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_exception(WireError(f"connection closed: {exc}"))

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        while self._parse():
            pass

    def _parse(self) -> bool:
        if self._head is None:
            end = self._buffer.find(b"\r\n\r\n")
            if end < 0:
                return False
            lines = bytes(self._buffer[:end]).decode("latin-1").split("\r\n")
            del self._buffer[: end + 4]
            headers = {}
            for line in lines[1:]:
                name, _, value = line.partition(":")
                headers[name.lower()] = value.strip()
            if "content-length" not in headers:
                raise WireError(f"no Content-Length in {lines[0]!r}")
            self._head = (int(lines[0].split(" ", 2)[1]), headers, int(headers["content-length"]))
        status, headers, length = self._head
        if len(self._buffer) < length:
            return False
        body = bytes(self._buffer[:length])
        del self._buffer[:length]
        self._head = None
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(Answer(status, headers, body, time.monotonic()))
        return bool(self._buffer)

    def send(
        self, method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None
    ) -> asyncio.Future[Answer]:
        """Write a request now; the future resolves with its answer."""
        if self.transport is None:
            raise WireError("not connected")
        assert self._waiter is None, "one request at a time"
        lines = [f"{method} {path} HTTP/1.1", f"Host: {self.host}"]
        lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
        if body or method in ("POST", "PUT"):
            lines += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
        self.transport.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)
        self._waiter = asyncio.get_running_loop().create_future()
        return self._waiter

    async def request(
        self, method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None
    ) -> Answer:
        return await self.send(method, path, body, headers)

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


async def connect(address: str) -> HttpConnection:
    host, _, port = address.rpartition(":")
    loop = asyncio.get_running_loop()
    _, protocol = await loop.create_connection(lambda: HttpConnection(address), host, int(port))
    return protocol


async def fetch(
    address: str, method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None
) -> Answer:
    """One request on a fresh connection (as a client failing over would make it)."""
    conn = await connect(address)
    try:
        return await conn.request(method, path, body, headers)
    finally:
        conn.close()


class LineConnection:
    """The raw counter's control protocol: one line out, one line back."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    async def call(self, line: str) -> str:
        self.writer.write(line.encode() + b"\n")
        answer = await self.reader.readline()
        if not answer:
            raise WireError("connection closed")
        return answer.decode().rstrip("\n")

    def close(self) -> None:
        self.writer.close()


async def connect_line(address: str) -> LineConnection:
    host, _, port = address.rpartition(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    return LineConnection(reader, writer)
