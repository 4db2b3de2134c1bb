"""A clock the test moves: ``await clock.sleep(s)`` returns once ``advance`` has carried the
clock past its deadline, so loops with timers and backoff run without waiting on wall time."""

from __future__ import annotations

import asyncio
import heapq
import itertools


class VirtualClock:
    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []  # every sleep asked for, in order
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._order = itertools.count()

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        wake = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (self.now + seconds, next(self._order), wake))
        await wake

    async def advance(self, seconds: float) -> None:
        """Move the clock and let every sleeper whose deadline passed run on."""
        self.now += seconds
        while self._sleepers and self._sleepers[0][0] <= self.now:
            _, _, wake = heapq.heappop(self._sleepers)
            if not wake.done():
                wake.set_result(None)
        for _ in range(5):  # let the woken tasks reach their next await
            await asyncio.sleep(0)

    @property
    def sleeping(self) -> int:
        return sum(1 for *_, wake in self._sleepers if not wake.done())
