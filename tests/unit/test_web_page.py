"""The Networking page's files as the master serves them (the page itself runs in a real browser
in tests/integration/test_networking_page.py).

Served at ``/`` and ``/web/*`` with their content types, open even with ``--protect-reads`` (they
hold no data), under a Content-Security-Policy that allows nothing outside this replica and no
inline script; not part of the OpenAPI contract; no file refers to anything outside the cluster.
"""

from __future__ import annotations

import re
from importlib import resources

import pytest

from overlay_master.http_edge import ApiSettings
from overlay_master.web import ASSET_PREFIX, ASSETS
from tests.fakes.app import TOKEN, serve
from tests.fakes.node import FakeNode

pytestmark = [pytest.mark.unit, pytest.mark.anyio]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def test_the_page_and_its_files_are_served_with_a_strict_policy() -> None:
    async with serve(FakeNode(), ApiSettings(token=TOKEN, protect_reads=True)) as client:
        page = await client.get("/")
        assert page.status_code == 200
        assert page.headers["content-type"] == "text/html; charset=utf-8"
        assert b'<script src="/web/app.js" defer></script>' in page.content
        policy = page.headers["content-security-policy"]
        assert "default-src 'none'" in policy and "connect-src 'self'" in policy
        assert "unsafe-inline" not in policy and "unsafe-eval" not in policy
        assert page.headers["x-content-type-options"] == "nosniff"
        for name, media_type in ASSETS.items():
            answer = await client.get(ASSET_PREFIX + name)
            assert answer.status_code == 200, name
            assert answer.headers["content-type"] == media_type
            packaged = (resources.files("overlay_master") / "web" / name).read_bytes()
            assert answer.content == packaged
        missing = await client.get(ASSET_PREFIX + "secrets.txt")
        assert missing.status_code == 404 and missing.json()["error"] == "not_found"
        # a query parameter cannot pick another file
        other = await client.get(ASSET_PREFIX + "style.css", params={"name": "index.html"})
        assert other.headers["content-type"] == ASSETS["style.css"]
        wrong = await client.post("/")
        assert wrong.status_code == 405 and wrong.headers["allow"] == "GET"


async def test_the_page_is_not_part_of_the_api_contract() -> None:
    async with serve(FakeNode()) as client:
        paths = (await client.get("/openapi.json")).json()["paths"]
        assert "/" not in paths and not any(p.startswith(ASSET_PREFIX) for p in paths)


def test_no_file_refers_to_anything_outside_the_cluster() -> None:
    web = resources.files("overlay_master") / "web"
    for name in ASSETS:
        text = (web / name).read_text()
        assert not re.search(r"https?://", text), name
        assert not re.search(r"""(src|href)\s*=\s*["']//|url\(|@import""", text), name
        assert "innerHTML" not in text and "insertAdjacentHTML" not in text, name
        assert "document.write" not in text and "eval(" not in text, name
