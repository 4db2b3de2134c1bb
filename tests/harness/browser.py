"""Debian's chromium driven by Playwright (from PyPI), for the Networking page's tests.

Never ``playwright install``: the browser is the Debian package (``scripts/test-deps``), started
with a fresh profile per run and every background network feature off, so the only traffic is
the page's own, to the replica on loopback. Every page records its console errors and warnings,
uncaught exceptions and the URLs it requested, for the tests to assert on.
"""

from __future__ import annotations

import contextlib
import re
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
LAPTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}


@dataclass
class WatchedPage:
    """A page and everything it said and asked for."""

    page: Any  # playwright.sync_api.Page
    problems: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)

    def unexpected(self, *allowed: str) -> list[str]:
        """Problems other than those matching one of the ``allowed`` patterns."""
        return [p for p in self.problems if not any(re.search(a, p) for a in allowed)]


@contextlib.contextmanager
def chromium() -> Iterator[Any]:
    """A browser context (a fresh profile in a temporary directory), closed on the way out."""
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing: scripts/test-deps installs Debian's chromium (root)")
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="playwright is not installed: scripts/bootstrap --dev"
    )
    with (
        tempfile.TemporaryDirectory(prefix="overlay-chromium-") as profile,
        sync_api.sync_playwright() as playwright,
    ):
        context = playwright.chromium.launch_persistent_context(
            profile,
            executable_path=str(CHROMIUM),
            headless=True,
            args=CHROMIUM_ARGS,
            viewport=LAPTOP,
        )
        try:
            yield context
        finally:
            context.close()


def open_page(context: Any, url: str, viewport: dict[str, int] | None = None) -> WatchedPage:
    page = context.new_page()
    watched = WatchedPage(page)
    if viewport is not None:
        page.set_viewport_size(viewport)

    def console(message: Any) -> None:
        if message.type in ("error", "warning"):
            watched.problems.append(f"console {message.type}: {message.text}")

    page.on("console", console)
    page.on("pageerror", lambda error: watched.problems.append(f"page error: {error}"))
    page.on("request", lambda request: watched.requests.append(request.url))
    page.goto(url)
    return watched
