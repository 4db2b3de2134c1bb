"""Running code inside the agent's network namespace (``--netns``) from the calling thread.

``setns`` changes the namespace of the calling thread only, so the kernel worker can enter the
namespace for a moment and leave it: files opened under ``/proc/sys/net`` belong to it, and so
does every process started meanwhile (a child inherits its parent thread's namespaces), without
an ``ip netns exec`` wrapper process. Not for threads that other code shares.
"""

from __future__ import annotations

import ctypes
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

NETNS_DIR = Path("/run/netns")
CLONE_NEWNET = 0x40000000


@contextmanager
def inside(netns: str | None) -> Iterator[None]:
    """Run the body with this thread in ``netns`` (None: stay where we are)."""
    if netns is None:
        yield
        return
    own = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    try:
        target = os.open(NETNS_DIR / netns, os.O_RDONLY)
    except OSError:
        os.close(own)
        raise
    try:
        _setns(target)
        try:
            yield
        finally:
            _setns(own)
    finally:
        os.close(target)
        os.close(own)


def _setns(fd: int) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.setns(fd, CLONE_NEWNET) != 0:
        code = ctypes.get_errno()
        raise OSError(code, f"setns: {os.strerror(code)}")
