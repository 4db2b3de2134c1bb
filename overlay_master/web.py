"""The Networking page: ``GET /`` and its two static files, served by every replica.

The page (``overlay_master/web/``: plain HTML, JavaScript and CSS, no build step) reads the same
API as every other client, from the replica that served it, and follows the watch long-poll. It
holds no data itself, so it is open even with ``--protect-reads``: the page asks for the token
and sends it on its reads. The files are read once, when the app is built, and served with a
Content-Security-Policy that lets the page load and connect to nothing but this replica, and
run no inline script (names in the page come from the API: escaping is the page's job, the
policy is the second line).

The routes stay out of the OpenAPI document: they are not part of the API's contract.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from importlib import resources

from fastapi.responses import Response

from overlay_master.routing import Routes

PAGE_PATH = "/"
ASSET_PREFIX = "/web/"
ASSETS = {
    "index.html": "text/html; charset=utf-8",
    "app.js": "text/javascript; charset=utf-8",
    "style.css": "text/css; charset=utf-8",
}
HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    # a new version of the page is picked up at the next load, never mixed with a cached one
    "Cache-Control": "no-cache",
}


def add_web_routes(routes: Routes) -> None:
    files = resources.files("overlay_master") / "web"
    bodies = {name: (files / name).read_bytes() for name in ASSETS}

    def handler(name: str) -> Callable[[], Awaitable[Response]]:
        async def serve() -> Response:
            return Response(bodies[name], media_type=ASSETS[name], headers=HEADERS)

        return serve

    app = routes.app
    app.add_api_route(PAGE_PATH, handler("index.html"), methods=["GET"], include_in_schema=False)
    for name in ASSETS:
        app.add_api_route(
            ASSET_PREFIX + name, handler(name), methods=["GET"], include_in_schema=False
        )
