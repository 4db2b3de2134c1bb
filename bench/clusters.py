"""The two clusters the benchmarks compare: overlay-master replicas and raw PySyncObj counters.

``OverlayCluster`` is the integration-test harness's ``Cluster`` (three real ``overlay_master.cli``
processes on loopback) with children started through ``bench.processes`` so that they die with
the runner. ``RawCluster`` runs three ``bench.raw_counter`` processes with the master's exact
Raft settings. Both are stopped by PID in a finalizer (``stop_all``).
"""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from bench import processes
from tests.harness.cluster import Cluster, Replica, free_ports
from tests.waiting import wait_until

# DC/OS 1.11's default overlay config: `dcos` (IPv4) and `dcos6` (IPv6), VTEPs from a /20 (4,094).
TWO_OVERLAYS = """\
vtep_subnet: 44.128.0.0/20
vtep_subnet6: fd01:a::/64
vtep_mac_oui: 70:B3:D5:00:00:00
vtep_mtu: 1420
overlays:
  - name: dcos
    subnet: 9.0.0.0/8
    prefix: 26
  - name: dcos6
    subnet6: fd01:b::/64
    prefix6: 80
"""
MAX_AGENTS = 4094


def agent_ip(n: int, space: int = 10) -> str:
    """The n-th test agent's address in ``space.0.0.0/8`` (n >= 1)."""
    return f"{space}.{(n >> 16) & 255}.{(n >> 8) & 255}.{n & 255}"


class OverlayCluster(Cluster):
    def start(self, replica: Replica, **kwargs: Any) -> None:
        assert not replica.alive
        with replica.log.open("ab") as log:
            replica.proc = processes.spawn(self.command(replica, **kwargs), log=log)

    def pids(self) -> list[int]:
        return [r.proc.pid for r in self.replicas if r.proc is not None]

    def roles(self) -> list[str]:
        roles = []
        for r in self.replicas:
            try:
                roles.append(httpx.get(f"{r.url}/overlay-master/leader", timeout=1).json()["role"])
            except (httpx.HTTPError, OSError):
                roles.append("down")
        return roles

    def raft_term(self) -> int:
        """The highest Raft term any live replica reports (each election adds at least one)."""
        terms = []
        for r in self.replicas:
            if r.alive:
                text = httpx.get(f"{r.url}/metrics", timeout=5).text
                for line in text.splitlines():
                    if line.startswith("overlay_master_raft_term "):
                        terms.append(int(float(line.split()[1])))
        return max(terms)

    def stable(self) -> bool:
        """All three ready and exactly one leader."""
        for r in self.replicas:
            if not self._ready(r):
                return False
        return self.roles().count("leader") == 1


@dataclass
class RawReplica:
    index: int
    raft: str
    control: str
    data_dir: Path
    log: Path
    proc: subprocess.Popen[bytes] | None = None

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


@dataclass
class RawCluster:
    root: Path
    batch: bool = False  # PySyncObj's own batching (appendEntriesUseBatch)
    password: str = "test-raft-password-0123456789"
    host: str = "127.0.0.1"
    replicas: list[RawReplica] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        (self.root / "password").write_text(self.password)
        ports = free_ports(6, self.host)
        for i in range(3):
            self.replicas.append(
                RawReplica(
                    i,
                    f"{self.host}:{ports[i]}",
                    f"{self.host}:{ports[3 + i]}",
                    self.root / f"raw-{i + 1}",
                    self.root / f"raw-{i + 1}.log",
                )
            )

    def command(self, replica: RawReplica) -> list[str]:
        peers = ",".join(r.raft for r in self.replicas if r is not replica)
        return [
            sys.executable,
            "-m",
            "bench.raw_counter",
            "--self",
            replica.raft,
            "--peers",
            peers,
            "--data-dir",
            str(replica.data_dir),
            "--password-file",
            str(self.root / "password"),
            "--control",
            replica.control,
            *(["--batch"] if self.batch else []),
        ]

    def start(self, replica: RawReplica) -> None:
        assert not replica.alive
        with replica.log.open("ab") as log:
            replica.proc = processes.spawn(self.command(replica), log=log)

    def start_all(self) -> None:
        for r in self.replicas:
            self.start(r)
        wait_until("raw cluster stable", self.stable, 30)

    def kill(self, replica: RawReplica) -> None:
        assert replica.proc is not None
        processes.stop(replica.proc, signal.SIGKILL)

    def stop_all(self) -> None:
        for r in self.replicas:
            if r.proc is not None:
                processes.stop(r.proc)

    def status(self, replica: RawReplica) -> dict[str, Any]:
        if not replica.alive:
            raise AssertionError(f"raw replica {replica.index + 1} exited")
        host, _, port = replica.control.rpartition(":")
        with socket.create_connection((host, int(port)), timeout=1) as s:
            s.sendall(b"status\n")
            answer = s.makefile("rb").readline().decode()
        status: dict[str, Any] = json.loads(answer.split(" ", 1)[1])
        return status

    def stable(self) -> bool:
        try:
            statuses = [self.status(r) for r in self.replicas]
        except OSError:
            return False
        return all(s["ready"] for s in statuses) and [s["role"] for s in statuses].count(2) == 1

    def leader(self) -> RawReplica:
        def find() -> RawReplica | None:
            for r in self.replicas:
                if r.alive and self.status(r)["role"] == 2:
                    return r
            return None

        found: RawReplica = wait_until("a raw leader", find, 15)
        return found


def settle(condition: Any, timeout: float, what: str) -> None:
    """Wait for a condition that tolerates connection errors (a replica still starting)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if condition():
                return
        except (OSError, httpx.HTTPError, AssertionError, KeyError, ValueError):
            pass
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")
