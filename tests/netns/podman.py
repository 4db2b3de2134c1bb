"""A real container runtime from Debian that reads CNI configuration lists: ``podman`` (4.3, its
CNI network backend) running containers in an agent namespace, on the networks the agent wrote
into its own CNI directory (docs/test-environment.md, "Container runtimes").

``nsenter --net`` puts podman (and so the CNI plugins it runs) in the agent's namespace; the
bridge and portmap plugins then work there, and each container gets a namespace of its own.
``runc`` with the ``cgroupfs`` manager, explicit ulimits, a busybox-static image imported from a
folder (nothing can be pulled here). Every store (images, containers, state) is a directory of
the test's own, removed with every container in it at the end. Podman keeps two things outside
it: libcni's result cache in /var/lib/cni/results (an entry per attached container, removed when
the container is) and its blob-info cache in /var/lib/containers/cache.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.netns.topology import CNI_PATH, sh

BUSYBOX = Path("/bin/busybox")
IMAGE = "localhost/overlay-test/busybox:1"
PAGE = "hello from the overlay\n"  # served by the image's httpd at /www/hello
CONTAINERS_CONF = """\
[containers]
default_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]
[network]
network_backend = "cni"
cni_plugin_dirs = ["{plugins}"]
[engine]
cgroup_manager = "cgroupfs"
runtime = "runc"
events_logger = "file"
"""


def available() -> str | None:
    """Why a podman test cannot run here, or None."""
    for tool in ("podman", "runc", "conmon", "nsenter"):
        if shutil.which(tool) is None:
            return f"needs {tool} (Debian podman, runc, conmon, util-linux)"
    return None


@dataclass
class Podman:
    """podman in the namespace ``ns``, reading networks from ``network_dir``."""

    ns: str
    network_dir: Path
    root: Path

    def __call__(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return sh(
            *("env", f"CONTAINERS_CONF={self.root / 'containers.conf'}"),
            *("nsenter", f"--net=/run/netns/{self.ns}", "podman"),
            *("--root", str(self.root / "store"), "--runroot", str(self.root / "run")),
            *("--tmpdir", str(self.root / "tmp"), "--storage-driver", "vfs"),
            *("--network-config-dir", str(self.network_dir)),
            *args,
            check=check,
        )

    def networks(self) -> list[str]:
        return [n["name"] for n in json.loads(self("network", "ls", "--format", "json").stdout)]

    def address(self, container: str, key: str = "IPAddress") -> str:
        template = f"{{{{.NetworkSettings.Networks.dcos.{key}}}}}"
        return self("inspect", "-f", template, container).stdout.strip()

    def import_busybox(self) -> None:
        """A one-binary image with a page for its httpd."""
        if not BUSYBOX.exists():
            pytest.skip("needs a static busybox (Debian busybox-static)")
        rootfs = self.root / "rootfs"
        (rootfs / "bin").mkdir(parents=True)
        (rootfs / "www").mkdir()
        (rootfs / "www" / "hello").write_text(PAGE)
        shutil.copy2(BUSYBOX, rootfs / "bin" / "busybox")
        tar = self.root / "busybox.tar"
        subprocess.run(["tar", "-C", str(rootfs), "-cf", str(tar), "."], check=True, timeout=60)
        self("import", str(tar), IMAGE)


@contextmanager
def podman_in(ns: str, network_dir: Path) -> Iterator[Podman]:
    """A podman store for namespace ``ns``; its containers and directories go at the end."""
    root = Path(tempfile.mkdtemp(prefix="opm-", dir="/tmp"))
    (root / "containers.conf").write_text(CONTAINERS_CONF.format(plugins=CNI_PATH))
    podman = Podman(ns, network_dir, root)
    try:
        yield podman
    finally:
        podman("rm", "--all", "--force", "--time", "0", check=False)
        for line in reversed(Path("/proc/mounts").read_text().splitlines()):
            mountpoint = line.split()[1]
            if mountpoint.startswith(str(root)):  # a container's shm left by a failed rm
                sh("umount", "-l", mountpoint, check=False)
        shutil.rmtree(root, ignore_errors=True)
