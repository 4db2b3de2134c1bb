"""Mount, power-cut and unmount a ``tests.powercut.fs`` file system (the daemon is ours, by PID).

A power cut of one replica, in order: the replica is killed and reaped (the caller does that, so
no process has a file open), the daemon is told to drop everything unsynced, the mount goes
away (and with it every page the kernel still caches for it), and a fresh daemon mounts the
same disk. ``PowerCutMount.cut`` does the last three.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tests.powercut.fs import CONTROL

ROOT = Path(__file__).resolve().parents[2]
MOUNT_TIMEOUT = 10.0


def available() -> str | None:
    """Why power-cut mounts cannot run here, or None."""
    if os.geteuid() != 0:
        return "needs root to mount FUSE"
    if not os.path.exists("/dev/fuse"):
        return "no /dev/fuse"
    if shutil.which("fusermount3") is None:
        return "no fusermount3 (Debian package fuse3; scripts/test-deps installs it)"
    return None


@dataclass
class PowerCutMount:
    disk: Path  # what survives a power cut
    mountpoint: Path  # where the replica keeps its data
    log: Path
    proc: subprocess.Popen[bytes] | None = None
    cuts: int = 0

    def mount(self) -> None:
        assert self.proc is None or self.proc.poll() is not None, "already mounted"
        self.disk.mkdir(parents=True, exist_ok=True)
        self.mountpoint.mkdir(parents=True, exist_ok=True)
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "tests.powercut.fs", str(self.disk), str(self.mountpoint)],
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=ROOT,
                env={**os.environ, "PYTHONPATH": str(ROOT)},
            )
        deadline = time.monotonic() + MOUNT_TIMEOUT
        while not os.path.ismount(self.mountpoint):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.unmount()
                tail = self.log.read_text(errors="replace")[-2000:]
                raise RuntimeError(f"power-cut file system did not mount {self.mountpoint}: {tail}")
            time.sleep(0.02)

    def cut(self) -> None:
        """Lose everything unsynced (every process using the mount must be dead), remount."""
        started = time.monotonic()
        with open(str(self.mountpoint) + CONTROL, "wb", buffering=0) as control:
            control.write(b"cut")
        self.unmount(cut=True)
        self._note(f"power cut, unmounted in {time.monotonic() - started:.2f} s")
        self.cuts += 1
        self.mount()

    def unmount(self, cut: bool = False) -> None:
        """Unmount and wait for the daemon to exit (an ordinary unmount syncs everything).

        Every replica started while this mount existed holds a copy of it in its own mount
        namespace (``ip netns exec`` copies them all), which keeps the daemon serving after our
        unmount. After a power cut there is nothing left to write, so the daemon is ended at
        once (those copies then fail with ENOTCONN; nobody uses them). A mount still busy after
        ``MOUNT_TIMEOUT`` is detached lazily."""
        deadline = time.monotonic() + MOUNT_TIMEOUT
        while os.path.ismount(self.mountpoint):
            done = subprocess.run(
                ["fusermount3", "-u", str(self.mountpoint)], capture_output=True, check=False
            )
            if done.returncode == 0:
                break
            if time.monotonic() > deadline:
                self._note(f"still busy after {MOUNT_TIMEOUT:g} s: {done.stderr!r}; detaching")
                subprocess.run(["fusermount3", "-uz", str(self.mountpoint)], check=False)
                break
            time.sleep(0.05)
        proc, self.proc = self.proc, None
        if proc is None:
            return
        if cut:
            proc.terminate()
        try:
            proc.wait(timeout=MOUNT_TIMEOUT)
        except subprocess.TimeoutExpired:
            self._note("daemon still running after the unmount; ending it")
            proc.kill()
            proc.wait(timeout=MOUNT_TIMEOUT)

    def _note(self, text: str) -> None:
        with self.log.open("a") as log:
            log.write(f"{time.strftime('%H:%M:%S')} mount: {text}\n")


@contextlib.contextmanager
def mounted(disk: Path, mountpoint: Path, log: Path) -> Iterator[PowerCutMount]:
    fs = PowerCutMount(disk, mountpoint, log)
    fs.mount()
    try:
        yield fs
    finally:
        fs.unmount()
