"""Keep a replica's resident memory close to what it really uses (glibc's malloc, tuned).

Measured with tracemalloc after the benchmarks (4,094 agents, thousands of parked watches and
state reads): Python objects held 8-28 MiB above the 67 MiB a fresh replica needs, yet the
process kept 133-169 MiB resident. The rest was memory already freed but kept by glibc:

* Large answers (the whole state is ~3 MiB of JSON) are allocated and freed over and over. glibc
  serves blocks above ``M_MMAP_THRESHOLD`` (128 KiB) with their own mmap and unmaps them on
  free, but after the first such free it raises the threshold to that size (dynamic threshold),
  so later copies come from the heap, where one small block still in use pins everything below
  it. A fixed threshold (setting it turns the adjustment off) keeps large answers in mmap.
* Each thread that allocates gets its own arena (up to 8 per core); the event loop, PySyncObj's
  tick thread and asyncio's worker threads each keep their freed memory. Two arenas suffice.
* ``malloc_trim(0)`` every ``TRIM_PERIOD`` gives freed pages inside the heaps back to the kernel
  (it also walks the arenas' free lists, which ``free`` itself never does).

Only on glibc (Debian, the project's machines and image); elsewhere nothing changes.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import threading

log = logging.getLogger(__name__)

M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
M_ARENA_MAX = -8
MMAP_THRESHOLD = 128 * 1024
TRIM_THRESHOLD = 1024 * 1024
ARENAS = 2
TRIM_PERIOD = 10.0


def _glibc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        libc = ctypes.CDLL(name)
    except OSError:
        return None
    if not hasattr(libc, "mallopt") or not hasattr(libc, "malloc_trim"):
        return None
    return libc


def tune(stop: threading.Event | None = None) -> bool:
    """Set the allocator up as the module notes say and start the trim thread (daemon; ends with
    the process or when ``stop`` is set). False when this is not glibc."""
    libc = _glibc()
    if libc is None:
        log.info("not glibc: malloc left as it is")
        return False
    libc.mallopt(M_ARENA_MAX, ARENAS)
    libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)
    libc.mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD)
    stop = stop or threading.Event()

    def trim() -> None:
        while not stop.wait(TRIM_PERIOD):
            libc.malloc_trim(0)

    threading.Thread(target=trim, name="malloc-trim", daemon=True).start()
    return True
