"""``overlay-master dev-cluster``: three replicas on loopback, ready in seconds (the quick start).

Each replica is a real ``overlay-master`` process with its own data dir; the Raft password and the
API token are generated once into the data dir (mode 0600) and reused on the next start, so the
state survives restarts. Ctrl-C (or SIGTERM) stops all three and waits for them.
"""

from __future__ import annotations

import argparse
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

import httpx

from overlay_master.config import default_config_text, load_network

READY_TIMEOUT = 60.0


def main(argv: Sequence[str]) -> int:
    p = argparse.ArgumentParser(prog="overlay-master dev-cluster", description=__doc__)
    p.add_argument(
        "--data-dir", default="dev-cluster-data", help="where the three replicas keep their data"
    )
    p.add_argument("--config", help="network config (default: the embedded DC/OS default)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--raft-port", type=int, default=7101, help="first Raft port (three in a row)")
    p.add_argument("--http-port", type=int, default=8101, help="first HTTP port (three in a row)")
    args = p.parse_args(argv)
    data = Path(args.data_dir).resolve()
    data.mkdir(parents=True, exist_ok=True)
    config = data / "network.yaml"
    if args.config:
        load_network(args.config)  # fail before starting anything
        config.write_text(Path(args.config).read_text(encoding="utf-8"), encoding="utf-8")
    elif not config.exists():
        config.write_text(default_config_text(), encoding="utf-8")
    password, token = _secret(data / "raft-password"), _secret(data / "api-token")
    raft = [f"{args.host}:{args.raft_port + i}" for i in range(3)]
    http = [f"{args.host}:{args.http_port + i}" for i in range(3)]
    procs = [_start(i, raft, http, data, config, password, token) for i in range(3)]
    stopping = False

    def stop(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    try:
        if not _wait_ready(http, procs, lambda: stopping):
            print(
                "dev-cluster: the replicas did not become ready; see the logs in",
                data,
                file=sys.stderr,
            )
            return 1
        _announce(http, data, token)
        while not stopping and any(p.poll() is None for p in procs):
            time.sleep(0.2)
        return 0
    finally:
        _stop_all(procs)


def _secret(path: Path) -> Path:
    if not path.exists():
        path.write_text(secrets.token_urlsafe(32) + "\n", encoding="utf-8")
        path.chmod(0o600)
    return path


def _start(
    i: int, raft: list[str], http: list[str], data: Path, config: Path, password: Path, token: Path
) -> subprocess.Popen[bytes]:
    peers = ",".join(r for j, r in enumerate(raft) if j != i)
    replica_dir = data / f"replica-{i + 1}"
    replica_dir.mkdir(exist_ok=True)
    logfile = (data / f"replica-{i + 1}.log").open("ab")
    command = [
        sys.executable,
        "-m",
        "overlay_master.cli",
        "--config",
        str(config),
        "--self",
        raft[i],
        "--peers",
        peers,
        "--http",
        http[i],
        "--data-dir",
        str(replica_dir),
        "--raft-password-file",
        str(password),
        "--token-file",
        str(token),
    ]
    return subprocess.Popen(
        command, stdout=logfile, stderr=subprocess.STDOUT, start_new_session=True
    )


def _wait_ready(http: list[str], procs: list[subprocess.Popen[bytes]], stopping: object) -> bool:
    deadline = time.monotonic() + READY_TIMEOUT
    pending = set(http)
    with httpx.Client(timeout=1.0) as client:
        while pending and time.monotonic() < deadline:
            if callable(stopping) and stopping():
                return False
            if any(p.poll() is not None for p in procs):
                return False
            for address in list(pending):
                try:
                    if client.get(f"http://{address}/readyz").status_code == 200:
                        pending.discard(address)
                except httpx.HTTPError:
                    pass
            time.sleep(0.1)
    return not pending


def _announce(http: list[str], data: Path, token: Path) -> None:
    print("overlay master dev cluster is ready (3 replicas; Ctrl-C stops them)")
    for i, address in enumerate(http):
        print(
            f"  replica {i + 1}: http://{address}/overlay-master/state   log: {data}/replica-{i + 1}.log"
        )
    print(f"  API token (for writes): {token}")
    print("Try:")
    print(
        f'  curl -s -H "Authorization: Bearer $(cat {token})" -d \'{{"ip": "10.0.0.1"}}\' '
        f"-H 'Content-Type: application/json' http://{http[0]}/overlay-master/agents"
    )
    print(f"  curl -s http://{http[1]}/overlay-master/state")
    sys.stdout.flush()


def _stop_all(procs: list[subprocess.Popen[bytes]]) -> None:
    for p in procs:
        if p.poll() is None:
            os.kill(p.pid, signal.SIGTERM)
    deadline = time.monotonic() + 15
    for p in procs:
        try:
            p.wait(timeout=max(deadline - time.monotonic(), 0.1))
        except subprocess.TimeoutExpired:
            os.kill(p.pid, signal.SIGKILL)
            p.wait()
    print("dev-cluster: all replicas stopped")
