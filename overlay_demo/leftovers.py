"""What a run that crashed (``kill -9``, a lost terminal) leaves behind, and ending it.

The masters and agents run in sessions of their own, so they outlive a demo killed with SIGKILL
and would hold the ports the next run wants. Every child's PID is written to a record in the data
dir as it starts, with its start time (``/proc/PID/stat``'s 22nd field, clock ticks after boot):
the next run ends exactly those processes, by PID, and only if the PID still names the same
process (a PID the kernel has handed to something else since has another start time). A clean
exit removes the record. Namespaces are found by their name prefix (``hosts``).
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path

GONE_STATES = ("Z", "X")  # a zombie has exited; only its parent's wait is missing
END_TIMEOUT = 10.0
KILL_TIMEOUT = 5.0


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
