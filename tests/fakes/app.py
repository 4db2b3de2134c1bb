"""The master's real HTTP app over a ``FakeNode``, reached in-process through ASGI."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import httpx

from overlay_master.api import create_app
from overlay_master.http_edge import ApiSettings
from tests.fakes.node import FakeNode

TOKEN = "unit-test-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@contextlib.asynccontextmanager
async def serve(
    node: FakeNode, settings: ApiSettings | None = None
) -> AsyncIterator[httpx.AsyncClient]:
    """A client of ``create_app(node)``, with the app's lifespan run around it (as uvicorn does)."""
    app = create_app(node, settings or ApiSettings(token=TOKEN))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://master") as client:
            yield client
