"""``overlay-master dev-cluster``: three replicas on loopback, ready in seconds.

Each replica is a real ``overlay-master`` process with its own data dir; the Raft password and the
API token are generated once into the data dir (mode 0600) and reused on the next start, so the
state survives restarts. Ctrl-C (or SIGTERM) stops all three and waits for them.

The pieces (``Layout``, ``spawn``, ``wait_ready``, ``stop_all``) are also what ``overlay_demo``
(the main job, ``scripts/run``) starts its masters with.
"""

from __future__ import annotations

import argparse
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

import httpx

from overlay_master.config import default_config_text, load_network

READY_TIMEOUT = 60.0
STOP_TIMEOUT = 15.0
REPLICAS = 3


@dataclass(frozen=True)
class Layout:
    """Where the replicas of a dev cluster keep their files and listen."""

    data: Path
    config: Path
    password: Path
    token: Path
    host: str
    raft: tuple[str, ...]
    http: tuple[str, ...]

    @property
    def urls(self) -> list[str]:
        return [f"http://{address}" for address in self.http]

    def log(self, i: int) -> Path:
        return self.data / f"replica-{i + 1}.log"

    def command(self, i: int) -> list[str]:
        peers = ",".join(r for j, r in enumerate(self.raft) if j != i)
        replica_dir = self.data / f"replica-{i + 1}"
        replica_dir.mkdir(exist_ok=True)
        return [
            *(sys.executable, "-m", "overlay_master.cli", "--config", str(self.config)),
            *("--self", self.raft[i], "--peers", peers, "--http", self.http[i]),
            *("--data-dir", str(replica_dir), "--raft-password-file", str(self.password)),
            *("--token-file", str(self.token)),
        ]


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--data-dir", default="dev-cluster-data", help="where the three replicas keep their data"
    )
    p.add_argument("--config", help="network config (default: the embedded DC/OS default)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--raft-port", type=int, default=7101, help="first Raft port (three in a row)")
    p.add_argument("--http-port", type=int, default=8101, help="first HTTP port (three in a row)")


def layout(args: argparse.Namespace) -> Layout:
    """Create the data dir, the config (the embedded default unless ``--config``) and secrets."""
    data = Path(args.data_dir).resolve()
    data.mkdir(parents=True, exist_ok=True)
    config = data / "network.yaml"
    if args.config:
        load_network(args.config)  # fail before starting anything
        config.write_text(Path(args.config).read_text(encoding="utf-8"), encoding="utf-8")
    elif not config.exists():
        config.write_text(default_config_text(), encoding="utf-8")
    return Layout(
        data=data,
        config=config,
        password=_secret(data / "raft-password"),
        token=_secret(data / "api-token"),
        host=args.host,
        raft=tuple(f"{args.host}:{args.raft_port + i}" for i in range(REPLICAS)),
        http=tuple(f"{args.host}:{args.http_port + i}" for i in range(REPLICAS)),
    )


def main(argv: Sequence[str]) -> int:
    p = argparse.ArgumentParser(prog="overlay-master dev-cluster", description=__doc__)
    add_arguments(p)
    cluster = layout(p.parse_args(argv))
    procs = [spawn(cluster.command(i), cluster.log(i)) for i in range(REPLICAS)]
    stopping = False

    def stop(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    try:
        if not wait_ready(cluster.http, procs, lambda: stopping):
            print(
                "dev-cluster: the replicas did not become ready; see the logs in",
                cluster.data,
                file=sys.stderr,
            )
            return 1
        print("overlay master dev cluster is ready (3 replicas; Ctrl-C stops them)")
        print("\n".join(master_lines(cluster)), flush=True)
        while not stopping and any(p.poll() is None for p in procs):
            time.sleep(0.2)
        return 0
    finally:
        stop_all(procs)
        print("dev-cluster: all replicas stopped")


def _secret(path: Path) -> Path:
    if not path.exists():
        path.write_text(secrets.token_urlsafe(32) + "\n", encoding="utf-8")
        path.chmod(0o600)
    return path


def spawn(command: list[str], log: Path) -> subprocess.Popen[bytes]:
    """Start a child in a session of its own (a terminal's Ctrl-C reaches only us, and we stop
    the children in order), its output appended to ``log``."""
    with log.open("ab") as out:
        return subprocess.Popen(
            command, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )


def wait_ready(
    http: Sequence[str], procs: Sequence[subprocess.Popen[bytes]], stopping: Callable[[], bool]
) -> bool:
    """Wait until every address answers ``/readyz`` 200; False if a child exits, ``stopping()``
    turns true or READY_TIMEOUT passes."""
    deadline = time.monotonic() + READY_TIMEOUT
    pending = set(http)
    with httpx.Client(timeout=1.0) as client:
        while pending and time.monotonic() < deadline:
            if stopping() or any(p.poll() is not None for p in procs):
                return False
            for address in list(pending):
                try:
                    if client.get(f"http://{address}/readyz").status_code == 200:
                        pending.discard(address)
                except httpx.HTTPError:
                    pass
            time.sleep(0.1)
    return not pending


def master_lines(cluster: Layout) -> list[str]:
    """The replicas' state URLs, logs, the token and a curl example, for a terminal."""
    lines = [
        f"  replica {i + 1}: http://{address}/overlay-master/state   log: {cluster.log(i)}"
        for i, address in enumerate(cluster.http)
    ]
    token, http = cluster.token, cluster.http
    lines += [
        f"  API token (for writes): {token}",
        "Try:",
        f'  curl -s -H "Authorization: Bearer $(cat {token})" -d \'{{"ip": "10.0.0.1"}}\' '
        f"-H 'Content-Type: application/json' http://{http[0]}/overlay-master/agents",
        f"  curl -s http://{http[1]}/overlay-master/state",
    ]
    return lines


def stop_all(procs: Sequence[subprocess.Popen[bytes]], timeout: float = STOP_TIMEOUT) -> None:
    """SIGTERM every child at once, then wait; SIGKILL what is still running at the deadline."""
    for p in procs:
        if p.poll() is None:
            os.kill(p.pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    for p in procs:
        try:
            p.wait(timeout=max(deadline - time.monotonic(), 0.1))
        except subprocess.TimeoutExpired:
            os.kill(p.pid, signal.SIGKILL)
            p.wait()
