"""When parked watchers are woken: at once after a quiet spell, at most every so often in a burst.

Design notes
------------
* Every woken watcher is answered and comes straight back with its new ``since``. If watchers
  were woken on every applied entry, a burst of writes (a registration storm: thousands of
  entries a minute) would keep every watcher in a loop of answer and re-poll, and the replica's
  one event loop would spend itself on those answers while the writes that cause them wait: in
  the 8,190-agent storm (bench/findings.md) registrations timed out 53,116 times and the last
  agent registered after 177 s.
* So revisions are *published* to watchers, and a watcher is answered once the published
  revision is above its ``since``. A publication happens at once when the previous fan-out is
  over and its pause has passed (an isolated change is not delayed: the convergence figure),
  otherwise once they have; the changes of the burst then go out together, as one delta.
* The pause is ``PAUSE_SHARE`` of the previous fan-out's duration (from waking the watchers to
  the last of them leaving its wait, which is when its answer has been written): the event loop
  spends at most about 1 / (1 + PAUSE_SHARE) of its time on fan-outs, at any cluster size and
  on any machine, and always at least that share on everything else. Capped at ``MAX_PAUSE``.
* A watcher whose ``since`` is already below the published revision is answered at once (it
  was not parked when the revision was published). One that heard of a newer, unpublished
  revision elsewhere (a write's answer, another replica) parks until the next publication,
  which is already due: every applied entry asks for one.
* What is published is what watchers are answered from: ``capture`` (the replica's snapshot of
  the moment) is called at each publication, and answers use that snapshot, so a full state or
  a delta is encoded once per publication, not once per applied entry (in a storm, each new
  agent's first read of the full state would otherwise encode and compress 5 MB per entry).
* Event-loop side only: the tick thread hands revisions over with ``call_soon_threadsafe``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Generic, Protocol, TypeVar

PAUSE_SHARE = 0.5
MAX_PAUSE = 1.0


class Revisioned(Protocol):
    @property
    def revision(self) -> int: ...


S = TypeVar("S", bound=Revisioned)


class Publisher(Generic[S]):
    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        revision: int,
        capture: Callable[[], S] | None = None,
    ) -> None:
        self.loop = loop
        self.capture = capture  # takes what is published (a snapshot)
        self.captured: S | None = None
        self.published = revision
        self.parked = 0  # watchers waiting now
        self._wanted = revision  # the newest revision asked to be published
        self._event = asyncio.Event()
        self._generation = 0  # publications so far; a watcher parks in one generation
        self._fanout = 0  # watchers woken by the last publication that have not left yet
        self._fired_at = 0.0
        self._ready_at = 0.0  # no publication before this (loop time)
        self._timer: asyncio.TimerHandle | None = None

    def publish(self, revision: int) -> None:
        """Ask for ``revision`` to reach the watchers (at once, or when the pause allows)."""
        if revision <= self._wanted:
            return
        self._wanted = revision
        self._schedule()

    def _schedule(self) -> None:
        if self._timer is not None or self._fanout > 0 or self._wanted <= self.published:
            return  # already due, or the fan-out in progress will schedule it when it ends
        delay = self._ready_at - self.loop.time()
        if delay <= 0:
            self._fire()
        else:
            self._timer = self.loop.call_later(delay, self._fire)

    def _fire(self) -> None:
        self._timer = None
        if self.capture is None:
            self.published = self._wanted
        else:
            self.captured = self.capture()
            self.published = self.captured.revision
        self._wanted = max(self._wanted, self.published)
        self._generation += 1
        self._fanout = self.parked
        self._fired_at = self._ready_at = self.loop.time()
        event, self._event = self._event, asyncio.Event()
        event.set()

    def _left(self, generation: int) -> None:
        if generation != self._generation - 1 or self._fanout == 0:
            return  # parked before an earlier publication, or after the last one
        self._fanout -= 1
        if self._fanout == 0:
            now = self.loop.time()
            self._ready_at = now + min(MAX_PAUSE, (now - self._fired_at) * PAUSE_SHARE)
            self._schedule()

    def answer_from(self, since: int, live: Callable[[], S]) -> S:
        """What a watch at ``since`` is answered from: the published snapshot, or the live one
        (``live()``) when the client is ahead of it."""
        captured = self.captured
        if captured is not None and captured.revision >= since:
            return captured
        return live()

    async def wait_above(self, since: int, timeout: float) -> None:
        """Return once the published revision is above ``since``, or after ``timeout``."""
        deadline = self.loop.time() + timeout
        while self.published <= since:
            remaining = deadline - self.loop.time()
            if remaining <= 0:
                return
            generation, event = self._generation, self._event
            self.parked += 1
            try:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(event.wait(), remaining)
            finally:
                self.parked -= 1
                self._left(generation)
