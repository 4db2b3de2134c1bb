"""A real three-replica overlay-master cluster on loopback, for integration and chaos tests.

Every process is started by this harness and ended by PID in ``stop_all`` (call it from a
finalizer). Ports are picked free per cluster; each replica has its own data dir and log file.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from tests.waiting import wait_until

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_CONFIG = """\
vtep_subnet: 44.128.0.0/20
vtep_mac_oui: 70:B3:D5:00:00:00
overlays:
  - name: dcos
    subnet: 9.0.0.0/8
    prefix: 26
"""


def free_ports(count: int, host: str = "127.0.0.1") -> list[int]:
    sockets, ports = [], []
    for _ in range(count):
        s = socket.socket()
        s.bind((host, 0))
        sockets.append(s)
        ports.append(s.getsockname()[1])
    for s in sockets:
        s.close()
    return ports


@dataclass
class Replica:
    index: int
    raft: str
    http: str
    data_dir: Path
    log: Path
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://{self.http}"

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


@dataclass
class Cluster:
    root: Path
    host: str = "127.0.0.1"
    config_text: str = DEFAULT_CONFIG
    token: str = "test-token-0123456789"
    password: str = "test-raft-password-0123456789"
    replicas: list[Replica] = field(default_factory=list)
    extra_args: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self.config = self.root / "network.yaml"
        self.config.write_text(self.config_text)
        (self.root / "token").write_text(self.token)
        (self.root / "password").write_text(self.password)
        ports = free_ports(6, self.host)
        for i in range(3):
            self.replicas.append(
                Replica(
                    i,
                    f"{self.host}:{ports[i]}",
                    f"{self.host}:{ports[3 + i]}",
                    self.root / f"replica-{i + 1}",
                    self.root / f"replica-{i + 1}.log",
                )
            )

    # -- processes --------------------------------------------------------------------------------

    def command(
        self, replica: Replica, config: Path | None = None, password: Path | None = None
    ) -> list[str]:
        peers = ",".join(r.raft for r in self.replicas if r is not replica)
        return [
            sys.executable,
            "-m",
            "overlay_master.cli",
            "--config",
            str(config or self.config),
            "--self",
            replica.raft,
            "--peers",
            peers,
            "--http",
            replica.http,
            "--data-dir",
            str(replica.data_dir),
            "--token-file",
            str(self.root / "token"),
            "--raft-password-file",
            str(password or self.root / "password"),
            *self.extra_args,
        ]

    own_session = False  # a process group of its own per replica (killed as one)

    def start(self, replica: Replica, **kwargs: Any) -> None:
        assert not replica.alive
        with replica.log.open("ab") as log:
            replica.proc = subprocess.Popen(
                self.command(replica, **kwargs),
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=ROOT,
                env={**os.environ, "PYTHONPATH": str(ROOT)},
                start_new_session=self.own_session,
            )

    def start_all(self) -> None:
        for r in self.replicas:
            self.start(r)
        self.wait_ready()

    def wait_ready(self, replicas: list[Replica] | None = None, timeout: float = 30) -> None:
        for r in replicas or self.replicas:
            wait_until(f"replica {r.index + 1} ready", lambda r=r: self._ready(r), timeout)

    def _ready(self, r: Replica) -> bool:
        if not r.alive:
            raise AssertionError(f"replica {r.index + 1} exited: {self.log_tail(r)}")
        return httpx.get(f"{r.url}/readyz", timeout=1).status_code == 200

    def kill(self, replica: Replica, sig: int = signal.SIGKILL) -> None:
        assert replica.proc is not None
        os.kill(replica.proc.pid, sig)
        if sig in (signal.SIGKILL, signal.SIGTERM):
            replica.proc.wait(timeout=30)

    def stop_all(self) -> None:
        for r in self.replicas:
            if r.alive and r.proc is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(r.proc.pid, signal.SIGCONT)
                    os.kill(r.proc.pid, signal.SIGKILL)
                r.proc.wait(timeout=30)

    def log_tail(self, replica: Replica, lines: int = 30) -> str:
        if not replica.log.exists():
            return "(no log)"
        return "\n".join(replica.log.read_text(errors="replace").splitlines()[-lines:])

    # -- API --------------------------------------------------------------------------------------

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def leader(self, timeout: float = 15) -> Replica:
        def find() -> Replica | None:
            for r in self.replicas:
                if (
                    r.alive
                    and httpx.get(f"{r.url}/overlay-master/leader", timeout=1).json()["role"]
                    == "leader"
                ):
                    return r
            return None

        found: Replica = wait_until("a leader", find, timeout)
        return found

    def write_until_answered(
        self,
        method: str,
        path: str,
        body: Any,
        deadline: float,
        start: int = 0,
        already_done: str | None = None,
    ) -> httpx.Response:
        """What a real client does with a write: try replicas in turn, retrying on 503 and on
        no answer (outcome unknown) until a definite answer. An answer whose reason is
        ``already_done`` means an earlier try took effect; it is returned like a success."""
        attempt = start
        while time.monotonic() < deadline:
            replica = self.replicas[attempt % len(self.replicas)]
            attempt += 1
            if not replica.alive:
                continue
            try:
                answer = httpx.request(
                    method, f"{replica.url}{path}", json=body, headers=self.auth, timeout=8
                )
            except httpx.HTTPError:
                continue
            if answer.status_code < 300:
                return answer
            if already_done is not None and answer.json().get("error") == already_done:
                return answer
            assert answer.status_code == 503, answer.text
            time.sleep(0.1)
        raise AssertionError(f"{method} {path} got no definite answer before the deadline")

    def register(
        self, replica: Replica, ip: str, bridges: bool = True, timeout: float = 10
    ) -> httpx.Response:
        body = {"ip": ip, "mesos_bridge": bridges, "docker_bridge": bridges}
        return httpx.post(
            f"{replica.url}/overlay-master/agents", json=body, headers=self.auth, timeout=timeout
        )

    def state(
        self, replica: Replica, consistent: bool = True, timeout: float = 10
    ) -> httpx.Response:
        params = {} if consistent else {"consistent": "false"}
        return httpx.get(f"{replica.url}/overlay-master/state", params=params, timeout=timeout)


@contextlib.contextmanager
def running_cluster(root: Path, **kwargs: Any) -> Iterator[Cluster]:
    cluster = Cluster(root, **kwargs)
    try:
        cluster.start_all()
        yield cluster
    finally:
        cluster.stop_all()
