"""Running the main job (``scripts/run`` / ``overlay-demo``) as a subprocess, the way a user does,
and finding everything it started.

The demo runs in a session of its own: a stop "from the terminal" is SIGINT to that process
group, as Ctrl-C is. Its children are followed through ``/proc`` (parent PIDs) while it runs, by
PID and start time, so the test can tell afterwards whether any of them is still alive.
``DemoRun.kill()`` is the finalizer: it ends the demo and every child it saw, by PID.
"""

from __future__ import annotations

import os
import random
import re
import signal
import socket
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from overlay_demo.leftovers import start_time

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "run"


def free_port_run(count: int, host: str = "127.0.0.1") -> int:
    """The first of ``count`` consecutive ports that are all free now (the demo takes its ports
    in runs of three), below the ephemeral range: the kernel hands those out as the source
    ports of connections (Raft's, HTTP clients'), so a port there that is free now can be taken
    before the agent that is to listen on it has started."""
    ephemeral_low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    for _ in range(200):
        base = random.randrange(10000, ephemeral_low - count)
        sockets = []
        try:
            for port in range(base, base + count):
                s = socket.socket()
                sockets.append(s)
                s.bind((host, port))
        except OSError:
            continue
        finally:
            for s in sockets:
                s.close()
        return base
    raise AssertionError(f"no {count} consecutive free ports found")


def demo_flags(data: Path, prefix: str | None) -> list[str]:
    base = free_port_run(9)
    flags = ["--data-dir", str(data), "--raft-port", str(base), "--http-port", str(base + 3)]
    flags += ["--agent-http-port", str(base + 6)]
    return flags + (["--prefix", prefix] if prefix else ["--masters-only"])


def processes() -> dict[int, tuple[int, int]]:
    """Every process: PID -> (parent PID, start time)."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[-1].split()
        except OSError:
            continue
        found[int(entry.name)] = (int(fields[1]), int(fields[19]))
    return found


def command_lines_with(needle: str) -> list[str]:
    """The command lines of running processes that mention ``needle``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if needle in argv:
            found.append(f"{entry.name}: {argv}")
    return found


@dataclass
class DemoRun:
    """One run of the demo; ``lines`` fills from its stdout as it prints."""

    proc: subprocess.Popen[str]
    stderr: Path
    lines: list[str] = field(default_factory=list)
    seen: dict[int, int] = field(default_factory=dict)  # descendants: PID -> start time
    reader: threading.Thread | None = None

    @classmethod
    def start(cls, command: list[str], cwd: Path) -> DemoRun:
        stderr = cwd / "demo.stderr"
        with stderr.open("w") as err:
            proc = subprocess.Popen(
                command, cwd=cwd, stdout=subprocess.PIPE, stderr=err, text=True,
                start_new_session=True,
            )  # fmt: skip
        run = cls(proc, stderr)
        run.reader = threading.Thread(target=run._read, daemon=True)
        run.reader.start()
        return run

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    def wait(self, timeout: float) -> int:
        """The exit status, once every line it printed has been read."""
        status = self.proc.wait(timeout)
        if self.reader is not None:
            self.reader.join(timeout)
        return status

    def output(self) -> str:
        return "\n".join(self.lines) + "\n--- stderr:\n" + self.stderr.read_text()[-4000:]

    def line(self, pattern: str) -> re.Match[str] | None:
        return next((m for m in map(re.compile(pattern).search, self.lines) if m), None)

    def wait_line(self, pattern: str, timeout: float) -> re.Match[str]:
        """The first printed line matching ``pattern``; fails if the demo exits first."""
        deadline = time.monotonic() + timeout
        while (found := self.line(pattern)) is None:
            self.follow_children()
            if self.proc.poll() is not None:
                self.wait(10)
                raise AssertionError(f"the demo exited ({self.proc.returncode}):\n{self.output()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"no line {pattern!r} in {timeout}s:\n{self.output()}")
            time.sleep(0.1)
        return found

    def follow_children(self) -> None:
        """Note every current descendant of the demo (by PID and start time)."""
        table = processes()
        family = {self.proc.pid}
        grew = True
        while grew:
            kids = {pid for pid, (ppid, _) in table.items() if ppid in family} - family
            family |= kids
            grew = bool(kids)
        for pid in family - {self.proc.pid}:
            self.seen.setdefault(pid, table[pid][1])

    def alive_children(self) -> list[int]:
        return [pid for pid, start in self.seen.items() if start_time(pid) == start]

    def interrupt(self, sig: int = signal.SIGINT, timeout: float = 60) -> int:
        """``sig`` to the demo's process group (Ctrl-C is SIGINT to the foreground group)."""
        self.follow_children()
        os.killpg(self.proc.pid, sig)
        return self.wait(timeout)

    def kill(self) -> None:
        """Finalizer: end the demo and every descendant seen, by PID, whatever state they are in."""
        if self.proc.poll() is None:
            self.follow_children()
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        for pid in self.alive_children():
            os.kill(pid, signal.SIGKILL)
