"""The floors: the master's own web stack serving pre-encoded bytes, with none of the master's work.

``python -m bench.floor --http H:P --body FILE [--delta FILE] [--delta-containers FILE]`` runs, on uvicorn configured as
``overlay_master.serve`` runs a replica (one worker, httptools, uvloop, the same log settings, a
pre-bound socket):

``GET /overlay-master/watch``  the master's own raw ASGI handler (``watch.WatchFastPath``, in
                               front of FastAPI exactly as in ``api.create_app``) over a stand-in
                               replica whose revision lives in memory and whose "encoding" returns
                               the ``--delta`` bytes (``--delta-containers`` for watchers with
                               ``include=containers``): the long-poll contract (``since``,
                               ``timeout``, one shared ``asyncio.Event``) with no Raft, snapshot
                               or encoding behind it (the convergence and live-change floors)
``GET /floor``                 FILE's bytes from a plain FastAPI route behind that same
                               middleware, with the state endpoint's media type and header (the
                               state floor)
``POST /bump``                 advance the revision and wake every parked watch
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from fastapi import FastAPI
from fastapi.responses import Response

from bench import processes
from overlay_master.http_edge import ApiSettings
from overlay_master.serve import _bind_http, http_config
from overlay_master.watch import WatchFastPath
from overlay_wire.contract import JSON, REVISION_HEADER
from tests.harness.cluster import free_ports
from tests.waiting import wait_until


@dataclass(frozen=True)
class FloorSnapshot:
    revision: int
    network: object = True  # configured: the handler only checks it is not None


class FloorEncoding:
    def __init__(self, delta: bytes, with_containers: bytes) -> None:
        self.delta, self.with_containers = delta, with_containers

    def watch_bytes(self, snap: FloorSnapshot, since: int, containers: bool = False) -> bytes:
        return self.with_containers if containers else self.delta


class FloorReplica:
    """What ``WatchFastPath`` asks of a replica, answered from memory."""

    def __init__(self, delta: bytes, with_containers: bytes) -> None:
        self.revision = 1
        self.encoding = FloorEncoding(delta, with_containers)
        self._changed = asyncio.Event()

    def bump(self) -> int:
        self.revision += 1
        self._changed.set()
        self._changed = asyncio.Event()
        return self.revision

    async def sync(self, timeout: float) -> int:
        return self.revision

    async def wait_revision_above(self, since: int, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while self.revision <= since and (remaining := deadline - time.monotonic()) > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), remaining)

    def snapshot(self) -> FloorSnapshot:
        return FloorSnapshot(self.revision)

    def watch_snapshot(self, since: int) -> FloorSnapshot:
        return self.snapshot()


def create_app(body: bytes, delta: bytes, with_containers: bytes) -> Any:
    app = FastAPI(title="floor", docs_url=None, redoc_url=None)
    replica = FloorReplica(delta, with_containers)

    def answer(content: bytes) -> Response:
        return Response(content, media_type=JSON, headers={REVISION_HEADER: str(replica.revision)})

    @app.get("/floor")
    async def floor(consistent: bool = True) -> Response:
        return answer(body)

    @app.post("/bump")
    async def bump() -> Response:
        replica.bump()
        return answer(b"{}")

    return WatchFastPath(app, replica, ApiSettings())  # type: ignore[arg-type]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--http", required=True)
    p.add_argument("--body", required=True)
    p.add_argument("--delta", help="the watch answer (default: the body)")
    p.add_argument("--delta-containers", help="the answer with include=containers (the delta)")
    args = p.parse_args()
    sock = _bind_http(args.http)
    body = Path(args.body).read_bytes()
    delta = Path(args.delta).read_bytes() if args.delta else body
    pages = Path(args.delta_containers).read_bytes() if args.delta_containers else delta
    app = create_app(body, delta, pages)
    uvicorn.Server(http_config(app)).run(sockets=[sock])


def launch(
    body: Path, delta: Path | None = None, with_containers: Path | None = None
) -> tuple[str, subprocess.Popen[bytes]]:
    """Start a floor process (from the runner) on a free port; returns its address once it answers."""
    address = f"127.0.0.1:{free_ports(1)[0]}"
    argv = [sys.executable, "-m", "bench.floor", "--http", address, "--body", str(body)]
    argv += ["--delta", str(delta)] if delta else []
    argv += ["--delta-containers", str(with_containers)] if with_containers else []
    proc = processes.spawn(argv)
    try:
        wait_until(
            "the floor endpoint",
            lambda: httpx.get(f"http://{address}/floor", timeout=5).status_code == 200,
            30,
        )
    except BaseException:
        processes.stop(proc)
        raise
    return address, proc


if __name__ == "__main__":
    main()
