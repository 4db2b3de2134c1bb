"""Waiting on a condition with a deadline, never a fixed sleep: one way, for every test.

``wait_until(what, check, timeout)`` polls ``check`` until it returns something truthy and
returns that; after ``timeout`` seconds it fails naming ``what`` (and the last connection error,
if the check kept failing to reach a server: a server not up yet counts as "not yet").
``eventually`` is the same for a test running on an event loop.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import TypeVar

import httpx

T = TypeVar("T")
NOT_YET = (httpx.HTTPError, OSError)  # a server not answering yet


def wait_until(what: str, check: Callable[[], T], timeout: float = 10.0, every: float = 0.05) -> T:
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while True:
        try:
            value = check()
            if value:
                return value
        except NOT_YET as e:
            last_error = e
        if time.monotonic() > deadline:
            cause = f" (last error: {last_error})" if last_error is not None else ""
            raise AssertionError(f"timed out after {timeout} s waiting for {what}{cause}")
        time.sleep(every)


async def eventually(
    what: str, check: Callable[[], object], timeout: float = 10.0, every: float = 0.002
) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(every)
