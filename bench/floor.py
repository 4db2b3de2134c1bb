"""The floor for the state endpoint: FastAPI on uvicorn returning pre-encoded bytes, nothing else.

``python -m bench.floor --http H:P --body FILE [--delta FILE]`` serves, from an app built and run
the way ``overlay_master.serve`` runs the master's (one uvicorn worker, same log settings, a
pre-bound socket), so that the difference to the real endpoints is the master's own work:

``GET /floor``                 FILE's bytes, with the state endpoint's media type and header
``GET /overlay-master/watch``  the master's long-poll contract (``since``, ``timeout``), parked on
                               one shared ``asyncio.Event``, answering the ``--delta`` bytes
``POST /bump``                 advance the revision and wake every parked watch
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import subprocess
import sys
import time
from pathlib import Path

import httpx
import uvicorn
from fastapi import FastAPI, Query
from fastapi.responses import Response

from bench import processes
from overlay_master.serve import _bind_http
from tests.harness.cluster import free_ports
from tests.waiting import wait_until


class Revisions:
    """The floor's long poll: a revision counter and one shared event, as the master keeps."""

    def __init__(self) -> None:
        self.revision = 1
        self.changed = asyncio.Event()

    def bump(self) -> int:
        self.revision += 1
        self.changed.set()
        self.changed = asyncio.Event()
        return self.revision

    async def wait_above(self, since: int, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while self.revision <= since and (remaining := deadline - time.monotonic()) > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.changed.wait(), remaining)


def create_app(body: bytes, delta: bytes) -> FastAPI:
    app = FastAPI(title="floor", docs_url=None, redoc_url=None)
    revisions = Revisions()

    def headers() -> dict[str, str]:
        return {"X-Overlay-Revision": str(revisions.revision)}

    @app.get("/floor")
    async def floor(consistent: bool = True) -> Response:
        return Response(body, media_type="application/json", headers=headers())

    @app.get("/overlay-master/watch")
    async def watch(
        since: int = Query(0, ge=0), timeout: float = Query(30.0, ge=0.0, le=300.0)
    ) -> Response:
        await revisions.wait_above(since, timeout)
        return Response(delta, media_type="application/json", headers=headers())

    @app.post("/bump")
    async def bump() -> Response:
        revisions.bump()
        return Response(b"{}", media_type="application/json", headers=headers())

    return app


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--http", required=True)
    p.add_argument("--body", required=True)
    p.add_argument("--delta", help="the watch answer (default: the body)")
    args = p.parse_args()
    sock = _bind_http(args.http)
    body = Path(args.body).read_bytes()
    app = create_app(body, Path(args.delta).read_bytes() if args.delta else body)
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on", workers=1)
    uvicorn.Server(config).run(sockets=[sock])


def launch(body: Path, delta: Path | None = None) -> tuple[str, subprocess.Popen[bytes]]:
    """Start a floor process (from the runner) on a free port; returns its address once it answers."""
    address = f"127.0.0.1:{free_ports(1)[0]}"
    argv = [sys.executable, "-m", "bench.floor", "--http", address, "--body", str(body)]
    proc = processes.spawn(argv + (["--delta", str(delta)] if delta else []))
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
