"""What a run that crashed (``kill -9``, a lost terminal) leaves behind, and ending it.

The masters and agents run in sessions of their own, so they outlive a demo killed with SIGKILL
and would hold the ports the next run wants. Every child's PID is written to a record in the data
dir as it starts, with its start time (``/proc/PID/stat``'s 22nd field, clock ticks after boot):
the next run ends exactly those processes, by PID, and only if the PID still names the same
process (a PID the kernel has handed to something else since has another start time). A clean
exit removes the record. Namespaces are found by their name prefix (``hosts``).

What a run that is still alive owns is never a leftover: each run holds a lock on its data dir
and, with agents, one on its namespace prefix (``flock``: the kernel drops it when the holder
dies, however it dies), and a second run refuses to start rather than end the first one's
processes or remove its namespaces.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from overlay_demo.errors import InUse

GONE_STATES = ("Z", "X")  # a zombie has exited; only its parent's wait is missing
END_TIMEOUT = 10.0
KILL_TIMEOUT = 5.0
LOCK_DIR = Path("/run/lock")  # the namespace prefix's lock: per machine, like the namespaces


def hold_lock(path: Path, what: str) -> IO[str]:
    """Lock ``path`` for as long as the returned file stays open; InUse if another run has it."""
    f = path.open("a+", encoding="utf-8")
    try:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        f.seek(0)
        holder = f.read().strip() or "?"
        f.close()
        raise InUse(f"another overlay-demo (PID {holder}) is running with {what}") from None
    f.truncate(0)
    f.write(f"{os.getpid()}\n")
    f.flush()
    return f


@dataclass(frozen=True)
class Recorded:
    pid: int
    start: int


def start_time(pid: int) -> int | None:
    """The process's start time, or None if there is no running process with this PID."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[-1].split()  # the name before ")" may hold spaces
    return None if fields[0] in GONE_STATES else int(fields[19])


class ProcessRecord:
    """The children of one run: ``PID START`` per line."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def add(self, pid: int) -> None:
        start = start_time(pid)
        if start is not None:
            with self.path.open("a", encoding="utf-8") as f:
                f.write(f"{pid} {start}\n")

    def entries(self) -> list[Recorded]:
        try:
            lines = self.path.read_text(encoding="utf-8").splitlines()
        except FileNotFoundError:
            return []
        found = []
        for line in lines:
            fields = line.split()
            if len(fields) == 2 and all(f.isdigit() for f in fields):
                found.append(Recorded(int(fields[0]), int(fields[1])))
        return found

    def clear(self) -> None:
        self.path.unlink(missing_ok=True)

    def end_leftovers(self, timeout: float = END_TIMEOUT) -> list[int]:
        """SIGTERM the recorded processes that still run, SIGKILL them at the deadline; their
        PIDs. The record is removed."""
        alive = [r for r in self.entries() if _same(r)]
        for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, KILL_TIMEOUT)):
            for r in alive:
                _signal(r, sig)
            deadline = time.monotonic() + wait
            while any(_same(r) for r in alive) and time.monotonic() < deadline:
                time.sleep(0.05)
        self.clear()
        return [r.pid for r in alive]


def _same(r: Recorded) -> bool:
    return start_time(r.pid) == r.start


def _signal(r: Recorded, sig: signal.Signals) -> None:
    if _same(r):
        with contextlib.suppress(ProcessLookupError):  # it exited after the check
            os.kill(r.pid, sig)
