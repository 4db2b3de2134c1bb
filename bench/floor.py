"""The floor for the state endpoint: FastAPI on uvicorn returning pre-encoded bytes, nothing else.

``python -m bench.floor --http H:P --body FILE`` serves ``GET /floor`` with FILE's bytes, the
same media type and revision header as the master's ``/overlay-master/state``, from an app built
and run the way ``overlay_master.serve`` runs the master's (one uvicorn worker, same log settings,
a pre-bound socket), so the difference to the real endpoint is the master's own work.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import uvicorn
from fastapi import FastAPI
from fastapi.responses import Response

from overlay_master.serve import _bind_http


def create_app(body: bytes) -> FastAPI:
    app = FastAPI(title="floor", docs_url=None, redoc_url=None)

    @app.get("/floor")
    async def floor(consistent: bool = True) -> Response:
        return Response(body, media_type="application/json", headers={"X-Overlay-Revision": "1"})

    return app


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--http", required=True)
    p.add_argument("--body", required=True)
    args = p.parse_args()
    sock = _bind_http(args.http)
    app = create_app(Path(args.body).read_bytes())
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on", workers=1)
    uvicorn.Server(config).run(sockets=[sock])


if __name__ == "__main__":
    main()
