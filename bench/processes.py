"""Child processes of the benchmark: started so that they die with the runner, ended by PID.

``spawn`` records every process; ``stop_all`` (called from the runner's ``finally`` and at exit)
sends SIGKILL to each recorded PID that is still running and reaps it. On top of that every child
gets ``PR_SET_PDEATHSIG``, so even a runner killed with SIGKILL leaves nothing behind.

Also here: what ``/proc`` says about a process (resident memory, open descriptors, CPU time) and
raising the open-file limit, which the replicas inherit.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import resource
import signal
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

ROOT = Path(__file__).resolve().parents[1]
PR_SET_PDEATHSIG = 1
_children: dict[int, subprocess.Popen[bytes]] = {}


def _die_with_parent() -> None:
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def spawn(
    argv: Sequence[str], log: IO[bytes] | None = None, **kwargs: Any
) -> subprocess.Popen[bytes]:
    """Start a child in the repository root; it is killed if the runner dies."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), **kwargs.pop("env", {})}
    proc = subprocess.Popen(
        list(argv),
        stdout=kwargs.pop("stdout", log if log is not None else subprocess.DEVNULL),
        stderr=kwargs.pop("stderr", subprocess.STDOUT if log is not None else subprocess.DEVNULL),
        cwd=ROOT,
        env=env,
        preexec_fn=_die_with_parent,  # noqa: PLW1509 -- the runner starts children from one thread
        **kwargs,
    )
    _children[proc.pid] = proc
    return proc


def stop(proc: subprocess.Popen[bytes], sig: int = signal.SIGKILL) -> None:
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, sig)
        proc.wait(timeout=30)
    _children.pop(proc.pid, None)


def output(argv: Sequence[str], timeout: float, what: str) -> bytes:
    """Run a child to its end and return its stdout; its exit status and stderr's tail in the
    error if it fails. Ended by PID whatever happens."""
    proc = spawn(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        out, err = proc.communicate(timeout=timeout)
    finally:
        stop(proc)
    if proc.returncode != 0:
        raise RuntimeError(f"{what} exited {proc.returncode}: {err.decode()[-1500:]}")
    return bytes(out)


def stop_all() -> None:
    for proc in list(_children.values()):
        stop(proc)


def raise_open_files() -> int:
    """Raise the soft open-file limit to the hard one (watchers need thousands); children inherit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


@dataclass(frozen=True)
class ProcSample:
    rss: int  # bytes
    hwm: int  # peak resident bytes
    fds: int
    cpu: float  # user + system seconds


def sample(pid: int) -> ProcSample:
    rss = hwm = 0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            rss = int(line.split()[1]) * 1024
        elif line.startswith("VmHWM:"):
            hwm = int(line.split()[1]) * 1024
    fds = len(os.listdir(f"/proc/{pid}/fd"))
    return ProcSample(rss, hwm, fds, cpu_seconds(pid))


def cpu_seconds(pid: int) -> float:
    stat = Path(f"/proc/{pid}/stat").read_text()
    after_name = stat.rsplit(")", 1)[1].split()
    utime, stime = int(after_name[11]), int(after_name[12])  # fields 14 and 15 of proc(5)
    return (utime + stime) / os.sysconf("SC_CLK_TCK")
