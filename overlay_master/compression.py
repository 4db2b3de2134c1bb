"""Gzip for the big answers (a full state), compressed once and shared by every reader.

Design notes
------------
* Why: every agent reads the full state once when it starts (its peers), and the full state
  grows with the cluster: 5.6 MB of JSON at 16,382 agents. A restarting data centre of N agents
  reads N full states, O(N^2) bytes: at 16,382 agents about 90 GB from three masters, which kept
  the benchmark's herd busy for minutes (bench/findings.md). The JSON is repetitive and level-1
  gzip takes it to a fourteenth (5.6 MB to 0.39 MB in 17 ms of CPU).
* Only when the client asks (``Accept-Encoding: gzip``; httpx, curl ``--compressed``, browsers
  and the agent all do) and only bodies of at least ``MIN_BYTES``: a delta of a few records is
  not worth the CPU, and a client that asks for nothing gets the plain bytes, as before.
* The encoder hands every reader of a revision the same ``bytes`` object, so compressed bodies
  are cached by that object's identity (the entry keeps the object alive, so the identity
  cannot be reused): thousands of watchers woken by one revision cost one compression. The cache
  holds the last ``KEEP`` bodies; readers only ever ask for the newest revision's.
* Answers say ``Vary: Accept-Encoding`` so a cache between client and master keeps them apart.
"""

from __future__ import annotations

import threading
import zlib
from collections import OrderedDict

MIN_BYTES = 64 << 10
LEVEL = 1  # level 6 saves another 15% of the bytes for three times the CPU
KEEP = 8
GZIP = "gzip"


def accepts_gzip(header: str | None) -> bool:
    """Whether an ``Accept-Encoding`` value allows gzip (RFC 9110: ``gzip`` or ``*``, q > 0)."""
    if not header:
        return False
    for item in header.split(","):
        name, _, params = item.strip().partition(";")
        if name.strip().lower() not in (GZIP, "*"):
            continue
        q = params.strip().replace(" ", "").lower()
        if q.startswith("q="):
            try:
                if float(q[2:]) <= 0:
                    return False
            except ValueError:
                return False
        return True
    return False


class Gzipper:
    """Compressed bodies by the identity of the plain ``bytes`` object (see the notes)."""

    def __init__(self, keep: int = KEEP) -> None:
        self.keep = keep
        self._cache: OrderedDict[int, tuple[bytes, bytes]] = OrderedDict()
        self._lock = threading.Lock()

    def encode(self, body: bytes, accept: str | None) -> tuple[bytes, str | None]:
        """The body to send and its ``Content-Encoding`` (None: sent as it is)."""
        if len(body) < MIN_BYTES or not accepts_gzip(accept):
            return body, None
        with self._lock:
            found = self._cache.get(id(body))
            if found is not None and found[0] is body:
                self._cache.move_to_end(id(body))
                return found[1], GZIP
        compressor = zlib.compressobj(LEVEL, zlib.DEFLATED, 16 + zlib.MAX_WBITS)  # gzip framing
        packed = compressor.compress(body) + compressor.flush()
        with self._lock:
            self._cache[id(body)] = (body, packed)
            self._cache.move_to_end(id(body))
            while len(self._cache) > self.keep:
                self._cache.popitem(last=False)
        return packed, GZIP


SHARED = Gzipper()  # one per process: the web app's routes and the watch handler
