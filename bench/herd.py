"""A herd of simulated agents in one process, driven over stdin/stdout (``bench.scale`` runs several).

``python -m bench.herd SPEC_JSON``: SPEC names the agents (``first``, ``count``: agents
``agent_ip(first) ..``), the replicas (``targets``) and the token. Each simulated agent does what
``overlay_agent`` does (client.py, loop.py), over one keep-alive ``bench.wire`` connection:

1. ``POST /overlay-master/agents`` to the replica it starts on (agent ``i`` starts on replica
   ``i mod 3``). A connection error, a timeout or a 5xx moves it to the next replica after a
   full-jitter exponential backoff (``overlay_agent.client.Backoff``: base 0.1 s, cap 5 s), or
   the master's ``Retry-After`` when longer (capped too). Timeouts are the agent's: 3 s to
   connect, 10 s per request.
2. Then, forever: ``GET /overlay-master/watch?since=REV&timeout=30`` starting from ``since=0``
   (a full state first, as a starting agent asks), remembering when it first held each revision.
   Failures are retried like registrations (the agent waits the backoff's cap after a failed
   watch).

Unlike a real agent it does not parse the state (only the revision header) and reports no
status. Commands, one JSON object per line on stdin; each answer is one JSON line on stdout:

``{"cmd": "go"}``          every agent starts registering at once; answer when all are registered:
                           ``registered`` (monotonic time of each acknowledgement), ``attempts``
``{"cmd": "wait", "revision": R}``  answer once every agent holds R or later and has parked its
                           next poll: ``held`` (when each first held R or later)
``{"cmd": "stats"}``       failures seen so far, by kind
``{"cmd": "quit"}``
``time.monotonic`` is the system's ``CLOCK_MONOTONIC``, so times compare across processes.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import sys
import time
from typing import Any

from bench import loadgen, processes, wire
from bench.clusters import agent_ip
from overlay_agent.client import CONNECT_TIMEOUT, REQUEST_TIMEOUT, WATCH_SLACK, Backoff

WATCH_TIMEOUT = 30  # the agent's default long-poll timeout (loop.py)


class Connection(wire.HttpConnection):
    """``bench.wire``'s connection, made cheap for big answers: a body beyond ``KEEP`` bytes is
    counted, not kept (a full state is megabytes; only its revision header is needed). Also
    runs on uvloop, whose transports are not asyncio's class."""

    KEEP = 4096

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self._left = 0  # body bytes of the current answer still to come
        self._body: bytearray | None = None  # kept only for small bodies

    def data_received(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            if self._head is not None:  # inside a body
                take = min(len(view), self._left)
                if self._body is not None:
                    self._body += view[:take]
                self._left -= take
                view = view[take:]
                if self._left == 0:
                    self._finish()
                continue
            self._buffer += view
            view = memoryview(b"")
            end = self._buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            lines = bytes(self._buffer[:end]).decode("latin-1").split("\r\n")
            view = memoryview(bytes(self._buffer[end + 4 :]))
            self._buffer.clear()
            headers = {}
            for line in lines[1:]:
                name, _, value = line.partition(":")
                headers[name.lower()] = value.strip()
            length = int(headers.get("content-length", "0"))
            self._head = (int(lines[0].split(" ", 2)[1]), headers, length)
            self._left = length
            self._body = bytearray() if length <= self.KEEP else None
            if length == 0:
                self._finish()

    def _finish(self) -> None:
        assert self._head is not None
        status, headers, _ = self._head
        self._head = None
        body = bytes(self._body) if self._body is not None else b""
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(wire.Answer(status, headers, body, time.monotonic()))


async def connect(address: str) -> wire.HttpConnection:
    host, _, port = address.rpartition(":")
    loop = asyncio.get_running_loop()
    _, protocol = await loop.create_connection(lambda: Connection(address), host, int(port))
    return protocol


class Agent:
    def __init__(self, herd: Herd, index: int, ip: str) -> None:
        self.herd, self.ip = herd, ip
        self.current = index % len(herd.targets)
        self.backoff = Backoff()
        self.conn: wire.HttpConnection | None = None
        self.attempts = 0
        self.registered: float | None = None
        self.since = 0
        self.held: list[tuple[int, float]] = []  # (revision, when first held), ascending
        self.parked = False

    async def request(self, method: str, path: str, body: bytes, timeout: float) -> wire.Answer:
        """One request, retried with failover and backoff until it gets a non-5xx answer."""
        while True:
            if method == "POST":
                self.attempts += 1
            stage = "connect"
            try:
                if self.conn is None or self.conn.transport is None:
                    self.conn = await asyncio.wait_for(
                        connect(self.herd.targets[self.current]), CONNECT_TIMEOUT
                    )
                stage = method
                answer = await asyncio.wait_for(
                    self.conn.request(method, path, body, self.herd.headers), timeout
                )
            except (OSError, wire.WireError, TimeoutError) as e:
                await self.failed(f"{stage} {type(e).__name__}", None)
                continue
            if answer.status < 500:
                self.backoff.reset()
                return answer
            await self.failed(str(answer.status), answer.headers.get("retry-after"))

    async def failed(self, kind: str, retry_after: str | None) -> None:
        self.herd.failures[kind] += 1
        if self.conn is not None:
            self.conn.close()
            self.conn = None
        self.current = (self.current + 1) % len(self.herd.targets)
        delay = self.backoff.next()
        if retry_after is not None:
            delay = max(delay, min(float(retry_after), self.backoff.cap))
        await asyncio.sleep(delay)

    async def run(self, go: asyncio.Event) -> None:
        await go.wait()
        body = json.dumps({"ip": self.ip}).encode()
        answer = await self.request("POST", "/overlay-master/agents", body, REQUEST_TIMEOUT)
        if answer.status != 200:
            raise RuntimeError(f"{self.ip}: registration answered {answer.status}: {answer.body!r}")
        self.registered = answer.arrived
        self.herd.registered_one()
        while True:
            path = f"/overlay-master/watch?since={self.since}&timeout={WATCH_TIMEOUT}"
            self.parked = True
            answer = await self.request("GET", path, b"", WATCH_TIMEOUT + WATCH_SLACK)
            self.parked = False
            if answer.status != 200:
                raise RuntimeError(f"{self.ip}: watch answered {answer.status}: {answer.body!r}")
            revision = answer.revision
            if revision > self.since:
                self.held.append((revision, answer.arrived))
                self.since = revision
                self.herd.moved()

    def held_since(self, revision: int) -> float | None:
        for r, t in self.held:
            if r >= revision:
                return t
        return None


class Herd:
    def __init__(self, spec: dict[str, Any]) -> None:
        self.targets: list[str] = spec["targets"]
        # Like the agent (httpx asks for gzip by default): a full state comes compressed. The
        # herd counts the bytes and never unpacks them (the agent's 14 ms, not the master's).
        self.headers = {"Authorization": f"Bearer {spec['token']}", "Accept-Encoding": "gzip"}
        self.agents = [
            Agent(self, spec["first"] + i, agent_ip(spec["first"] + i, spec.get("space", 10)))
            for i in range(spec["count"])
        ]
        self.failures: collections.Counter[str] = collections.Counter()
        self.pending = len(self.agents)
        self.all_registered = asyncio.Event()
        self.changed = asyncio.Event()
        self.tasks: list[asyncio.Task[None]] = []

    def registered_one(self) -> None:
        self.pending -= 1
        if self.pending == 0:
            self.all_registered.set()

    def moved(self) -> None:
        self.changed.set()

    def check(self) -> None:
        """Raise what ended an agent early (a refused registration, a watch answering 4xx)."""
        for task in self.tasks:
            if task.done() and not task.cancelled() and task.exception() is not None:
                raise RuntimeError(f"an agent stopped: {task.exception()!r}")

    async def reached(self, revision: int) -> None:
        while not all(a.since >= revision and a.parked for a in self.agents):
            self.check()
            self.changed.clear()
            with contextlib.suppress(TimeoutError):  # parked flags flip without an event
                await asyncio.wait_for(self.changed.wait(), 0.05)


def say(doc: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(doc) + "\n")
    sys.stdout.flush()


async def serve(spec: dict[str, Any]) -> None:
    herd = Herd(spec)
    go = asyncio.Event()
    herd.tasks = [asyncio.create_task(a.run(go)) for a in herd.agents]
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    say({"event": "ready"})
    while line := await reader.readline():
        command = json.loads(line)
        try:
            await answer(herd, go, command)
        except RuntimeError as e:
            say({"event": "error", "error": str(e)})
            break
    for t in herd.tasks:
        t.cancel()


async def answer(herd: Herd, go: asyncio.Event, command: dict[str, Any]) -> None:
    if command["cmd"] == "go":
        go.set()
        while not herd.all_registered.is_set():
            herd.check()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(herd.all_registered.wait(), 0.1)
        say(
            {
                "event": "registered",
                "registered": [a.registered for a in herd.agents],
                "attempts": [a.attempts for a in herd.agents],
                "cpu": loadgen.cpu(),
            }
        )
    elif command["cmd"] == "wait":
        revision = command["revision"]
        await herd.reached(revision)
        say(
            {
                "event": "reached",
                "held": [a.held_since(revision) for a in herd.agents],
                "cpu": loadgen.cpu(),
            }
        )
    elif command["cmd"] == "stats":
        say({"event": "stats", "failures": dict(herd.failures)})


def main() -> None:
    processes.raise_open_files()
    spec = json.loads(sys.argv[1])
    try:
        import uvloop  # the replicas' loop: a herd of thousands needs its speed on two cores

        uvloop.run(serve(spec))
    except ImportError:
        asyncio.run(serve(spec))


if __name__ == "__main__":
    main()
