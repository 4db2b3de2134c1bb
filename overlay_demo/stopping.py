"""Stop signals as a flag, and waits that honour it.

Ctrl-C, SIGTERM and SIGHUP only set a flag: an exception raised from a signal handler could land
inside the clean-up itself and leave namespaces behind. Start-up checks the flag between steps
and in every wait, so a signal during start-up ends it promptly and the clean-up runs in full.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Callable
from types import FrameType

from overlay_demo.errors import Interrupted, StartError

SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
POLL = 0.1


class Stopping:
    """Set by the first stop signal; the signal's name is kept for the goodbye line."""

    def __init__(self) -> None:
        self.signal: str | None = None

    def install(self) -> None:
        for sig in SIGNALS:
            signal.signal(sig, self._handle)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        self.signal = self.signal or signal.Signals(signum).name

    def __bool__(self) -> bool:
        return self.signal is not None

    def check(self) -> None:
        if self.signal is not None:
            raise Interrupted(f"{self.signal} during start-up")

    def wait_until(self, what: str, done: Callable[[], bool], timeout: float) -> None:
        """Poll ``done`` until it is true; StartError naming ``what`` after ``timeout``."""
        deadline = time.monotonic() + timeout
        while not done():
            self.check()
            if time.monotonic() > deadline:
                raise StartError(f"{what}: not within {timeout:g} s")
            time.sleep(POLL)
