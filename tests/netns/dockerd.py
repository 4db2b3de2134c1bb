"""A real ``dockerd`` inside an agent namespace (docs/test-environment.md, "A Docker daemon
inside an agent namespace"), driven and checked with the docker CLI, independent of the agent's client.

``nsenter --net`` puts the daemon in the agent's network namespace; ``unshare --mount`` gives it
a private mount namespace (``ip netns exec`` would remount /sys and hide the cgroups dockerd
needs). Both exec, so the process we start IS dockerd and is stopped by its PID. Its host
firewall options are all off, so it changes nothing outside its namespace. Directories are short
(a unix socket path must fit in 108 bytes) and removed after the daemon is gone.
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.netns.topology import Bed, sh
from tests.waiting import wait_until

BUSYBOX = Path("/bin/busybox")
IMAGE = "overlay-test/busybox:1"


def available() -> str | None:
    """Why a dockerd test cannot run here, or None."""
    for tool in ("dockerd", "docker", "nsenter", "unshare"):
        if shutil.which(tool) is None:
            return f"needs {tool} (Debian docker.io, util-linux)"
    return None


@dataclass
class Dockerd:
    ns: str
    root: Path
    proc: subprocess.Popen[bytes]

    @property
    def host(self) -> str:
        return f"unix://{self.root}/docker.sock"

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return sh("docker", "-H", self.host, *args, check=check)

    def network(self, name: str) -> dict[str, Any] | None:
        """``docker network inspect NAME``, or None if there is no such network."""
        done = self.cli("network", "inspect", name, check=False)
        if done.returncode != 0:
            return None
        (found,) = json.loads(done.stdout)
        assert isinstance(found, dict)
        return found

    def import_busybox(self) -> str:
        """A one-binary image from the static busybox (no registry here)."""
        if not BUSYBOX.exists():
            pytest.skip("needs a static busybox (Debian busybox-static)")
        rootfs = self.root / "rootfs"
        (rootfs / "bin").mkdir(parents=True, exist_ok=True)
        shutil.copy2(BUSYBOX, rootfs / "bin" / "busybox")
        tar = subprocess.run(
            ["tar", "-C", str(rootfs), "-c", "."], check=True, capture_output=True, timeout=60
        ).stdout
        done = subprocess.run(
            ["docker", "-H", self.host, "import", "-", IMAGE],
            input=tar,
            check=False,
            capture_output=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr.decode()
        return IMAGE

    def remove_containers(self) -> None:
        ids = self.cli("ps", "-aq", check=False).stdout.split()
        if ids:
            self.cli("rm", "-f", *ids, check=False)


@contextmanager
def running_dockerd(bed: Bed, ns: str) -> Iterator[Dockerd]:
    """dockerd in namespace ``ns`` for the duration of the block; containers, daemon and its
    directories are removed afterwards (even on failure)."""
    root = Path(tempfile.mkdtemp(prefix="ovd-", dir="/tmp"))
    (root / "daemon.json").write_text(json.dumps({"deprecated-key-path": str(root / "key.json")}))
    proc = bed.start(
        "nsenter",
        f"--net=/var/run/netns/{ns}",
        "unshare",
        "--mount",
        "--propagation",
        "slave",
        "dockerd",
        "--data-root",
        str(root / "data"),
        "--exec-root",
        str(root / "exec"),
        "--pidfile",
        str(root / "dockerd.pid"),
        "-H",
        f"unix://{root}/docker.sock",
        "--iptables=false",
        "--ip-forward=false",
        "--ip-masq=false",
        "--bridge=none",
        "--config-file",
        str(root / "daemon.json"),
        log=bed.root / f"dockerd-{ns}.log",
    )
    daemon = Dockerd(ns, root, proc)
    try:

        def up() -> bool:
            assert proc.poll() is None, (bed.root / f"dockerd-{ns}.log").read_text()[-2000:]
            return daemon.cli("version", check=False).returncode == 0

        wait_until(f"dockerd in {ns}", up, timeout=30, every=0.1)
        yield daemon
    finally:
        if proc.poll() is None:
            daemon.remove_containers()
        bed.stop(proc, signal.SIGTERM, timeout=30)  # by PID; SIGKILL after the timeout
        shutil.rmtree(root, ignore_errors=True)
