"""Three overlay-master replicas, each in its own network namespace (see ``topology``).

Extends the loopback harness (``tests.harness.cluster``): same processes, flags, logs and API
helpers, but every replica gets its own address and is started with ``ip netns exec`` (which
execs, so the PID we hold is the replica's own). Each start writes the PID to ``pids/`` so the
outer process can end a replica by PID even if the driver dies.
"""

from __future__ import annotations

import contextlib
import os
import signal
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from tests.chaos.topology import HTTP_PORT, RAFT_PORT, REPLICAS, Topology, replica_ip
from tests.harness.cluster import Cluster, Replica
from tests.powercut.mount import PowerCutMount

CONFIG = """\
vtep_subnet: 44.128.0.0/20
vtep_mac_oui: 70:B3:D5:00:00:00
vtep_subnet6: fd01:a::/64
overlays:
  - name: dcos
    subnet: 9.0.0.0/8
    prefix: 26
    subnet6: fd01:b::/64
    prefix6: 80
  - name: apps
    subnet: 172.16.0.0/12
    prefix: 24
"""


@dataclass
class NetnsCluster(Cluster):
    """Each replica's data dir is a power-cut mount (``tests.powercut``): a power cut drops what
    the replica had not synced."""

    topology: Topology | None = None
    mounts: list[PowerCutMount] = field(default_factory=list)

    def __post_init__(self) -> None:
        assert self.topology is not None
        self.root.mkdir(parents=True, exist_ok=True)
        (self.root / "pids").mkdir(exist_ok=True)
        self.config = self.root / "network.yaml"
        self.config.write_text(self.config_text)
        (self.root / "token").write_text(self.token)
        (self.root / "password").write_text(self.password)
        for i in range(REPLICAS):
            ip = replica_ip(i)
            self.replicas.append(
                Replica(
                    i,
                    f"{ip}:{RAFT_PORT}",
                    f"{ip}:{HTTP_PORT}",
                    self.root / f"replica-{i + 1}",
                    self.root / f"replica-{i + 1}.log",
                )
            )
            self.mounts.append(
                PowerCutMount(
                    self.root / f"disk-{i + 1}",
                    self.root / f"replica-{i + 1}",
                    self.root / f"fs-{i + 1}.log",
                )
            )

    def command(
        self, replica: Replica, config: Path | None = None, password: Path | None = None
    ) -> list[str]:
        assert self.topology is not None
        inner = super().command(replica, config, password)
        return ["ip", "netns", "exec", self.topology.replica_ns(replica.index), *inner]

    own_session = True  # a power cut kills the whole group (a forked snapshot child too)

    def start(self, replica: Replica, **kwargs: Any) -> None:
        super().start(replica, **kwargs)
        assert replica.proc is not None
        self.pid_file(replica).write_text(str(replica.proc.pid))

    def mount_all(self) -> None:
        for i, fs in enumerate(self.mounts):
            fs.mount()
            self._fs_pid(i, fs)

    def power_off(self, replica: Replica) -> None:
        """SIGKILL the replica's whole process group (it leads its own session): a snapshot
        child PySyncObj forked dies with the power too, instead of writing on afterwards."""
        assert replica.proc is not None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(replica.proc.pid, signal.SIGKILL)
        replica.proc.wait(timeout=30)

    def power_cut(self, replica: Replica) -> None:
        """Drop what the (powered-off) replica had not synced; its data dir is mounted afresh."""
        assert not replica.alive
        fs = self.mounts[replica.index]
        fs.cut()
        self._fs_pid(replica.index, fs)

    def unmount_all(self) -> None:
        for i, fs in enumerate(self.mounts):
            fs.unmount()
            (self.root / "pids" / f"fs-{i + 1}.pid").unlink(missing_ok=True)

    def _fs_pid(self, index: int, fs: PowerCutMount) -> None:
        assert fs.proc is not None
        (self.root / "pids" / f"fs-{index + 1}.pid").write_text(str(fs.proc.pid))

    def pid_file(self, replica: Replica) -> Path:
        return self.root / "pids" / f"replica-{replica.index + 1}.pid"

    def resume_all(self) -> None:
        for r in self.replicas:
            if r.alive and r.proc is not None:
                os.kill(r.proc.pid, signal.SIGCONT)

    def stop_all(self) -> None:
        super().stop_all()
        for r in self.replicas:
            self.pid_file(r).unlink(missing_ok=True)

    # -- observations (sync, for the nemesis and the final checks) --------------------------------

    def role(self, replica: Replica) -> str | None:
        try:
            answer = httpx.get(f"{replica.url}/overlay-master/leader", timeout=1)
            role: str = answer.json()["role"]
            return role
        except (httpx.HTTPError, ValueError, KeyError):
            return None

    def describe(self) -> list[str]:
        """One line per replica (process, role, readiness, Raft indexes), for reports."""
        lines = []
        for r in self.replicas:
            try:
                m = self.metrics(r)
                ready = httpx.get(f"{r.url}/readyz", timeout=2).json()
                raft = {
                    k.rsplit("_", 2)[-2]: int(v)
                    for k, v in m.items()
                    if "_raft_" in k and "{" not in k
                }
                lines.append(
                    f"replica {r.index + 1}: alive={r.alive} role={self.role(r)} raft={raft} "
                    f"revision={int(m.get('overlay_master_revision', -1))} ready={ready}"
                )
            except (httpx.HTTPError, ValueError) as e:
                lines.append(
                    f"replica {r.index + 1}: alive={r.alive} unreachable ({type(e).__name__})"
                )
        return lines

    def metrics(self, replica: Replica) -> dict[str, float]:
        text = httpx.get(f"{replica.url}/metrics", timeout=2).text
        values = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                name, _, value = line.rpartition(" ")
                values[name] = float(value)
        return values


def kill_stray(root: Path) -> list[int]:
    """End, by PID, every replica and power-cut file system daemon whose PID file is still in
    ``root/pids`` and whose command line names ``root`` (so a reused PID is never hit). For the
    outer process's finalizer."""
    ended = []
    for pid_file in sorted((root / "pids").glob("*.pid")):
        pid = int(pid_file.read_text())
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if str(root).encode() in cmdline:
            for sig in (signal.SIGCONT, signal.SIGKILL):
                try:
                    os.kill(pid, sig)
                except ProcessLookupError:
                    break
            ended.append(pid)
    return ended
