"""One replica: flags/env -> config, secrets, Raft node, recovery guard -> uvicorn.

Start-up order, and why:
1. The config is validated first (exit 2 with every problem listed): nothing starts on bad input.
2. The HTTP socket is bound before Raft starts, so a taken port fails fast with a clear message.
3. The Raft node binds (a few retries, then a clear error) and the API starts (``/healthz``
   answers at once; ``/readyz`` says not ready until step 4 is done).
4. Admission: once caught up with the leader (or, without a quorum within 15 s, with what its
   local journal holds), a replica whose log holds no networks yet proposes the config file as
   the seed (a ``configure`` entry that applies only to an empty log: when three replicas seed at
   once, the first entry wins and the others change nothing). A log that already holds networks
   is never changed at start-up: the log is the one source of truth, networks change through the
   API. If the file differs from the log, the replica says how (a warning per difference, the
   ``config_drift`` list of ``/readyz``, ``overlay-master check-config FILE --against URL``) and
   serves the log's networks.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import socket
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import uvicorn

from overlay_master import allocator, memory
from overlay_master.config import default_network, load_network
from overlay_master.drift import differences
from overlay_master.errors import (
    BindError,
    ConfigError,
    ConfigProblem,
    NotReadyError,
)
from overlay_master.network import NetworkConfig, to_plain
from overlay_master.node import Node, RaftSettings

if TYPE_CHECKING:
    from overlay_master.api import ApiSettings

log = logging.getLogger("overlay_master")
EXIT_REFUSED = 2
KEEP_ALIVE = 75  # seconds an idle keep-alive connection stays open (nginx's default)
LISTEN_BACKLOG = 16384  # the kernel caps it at net.core.somaxconn (4096 by default)
CATCH_UP_TIMEOUT = 15.0
ENV_PREFIX = "OVERLAY_MASTER_"


@dataclass
class Outcome:
    code: int = 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="overlay-master",
        description="One overlay master replica. Every flag can also be given as an environment "
        "variable OVERLAY_MASTER_<FLAG> (e.g. OVERLAY_MASTER_DATA_DIR).",
    )
    p.add_argument("--config", help="network config YAML (default: the embedded DC/OS default)")
    p.add_argument("--self", dest="self_address", help="this replica's Raft address HOST:PORT")
    p.add_argument(
        "--peers", default="", help="the other replicas' Raft addresses, comma-separated"
    )
    p.add_argument("--http", help="HTTP API address HOST:PORT")
    p.add_argument(
        "--advertise-url",
        help="URL the other replicas (and the Networking page) reach this API at (default: "
        "http://HOST:PORT of --http, with the --self host when --http binds every address)",
    )
    p.add_argument("--data-dir", help="directory for the Raft journal and snapshot")
    p.add_argument("--token-file", help="file holding the bearer token for state-changing requests")
    p.add_argument("--protect-reads", action="store_true", help="require the token for reads too")
    p.add_argument("--raft-password-file", help="file holding the shared Raft password")
    p.add_argument(
        "--insecure-dev",
        action="store_true",
        help="allow running without a Raft password (anyone reaching the Raft port could take over)",
    )
    p.add_argument(
        "--unsafe-no-fsync",
        action="store_true",
        help="BENCHMARKS ONLY: do not sync the Raft journal before acknowledging; a power cut of "
        "two replicas can then lose acknowledged allocations",
    )
    p.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    return p


def _env_defaults(p: argparse.ArgumentParser) -> None:
    for action in p._actions:
        if not action.option_strings or action.dest == "help":
            continue
        flag = action.option_strings[0].lstrip("-").upper().replace("-", "_")
        value = os.environ.get(ENV_PREFIX + flag)
        if value is None:
            continue
        if isinstance(action, argparse._StoreTrueAction):
            action.default = value.lower() in ("1", "true", "yes", "on")
        else:
            action.default = value


def main(argv: Sequence[str]) -> int:
    p = parser()
    _env_defaults(p)
    args = p.parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    missing = [f for f in ("self_address", "http", "data_dir") if not getattr(args, f)]
    if missing:
        p.error(
            "missing "
            + ", ".join("--" + m.replace("_", "-").replace("self-address", "self") for m in missing)
        )
    network = load_network(args.config) if args.config else default_network()
    password = _read_secret(args.raft_password_file, "--raft-password-file")
    if password is None and not args.insecure_dev:
        raise ConfigError(
            [
                ConfigProblem(
                    "--raft-password-file",
                    None,
                    "is required: without a password anyone "
                    "who reaches the Raft port can change the state (use --insecure-dev "
                    "only for local experiments)",
                )
            ],
            "command line",
        )
    token = _read_secret(args.token_file, "--token-file")
    memory.tune()
    http_socket = _bind_http(args.http)
    raft = RaftSettings(
        self_address=args.self_address,
        peers=tuple(p for p in (x.strip() for x in args.peers.split(",")) if p),
        data_dir=Path(args.data_dir),
        password=password,
        sync=not args.unsafe_no_fsync,
    )
    if args.unsafe_no_fsync:
        log.warning("--unsafe-no-fsync: acknowledged writes are not synced to disk")
    node = Node(raft)
    try:
        node.wait_bound()
        # The web stack is imported only now: its ~0.5 s of imports overlap the Raft node's
        # start (election timer, catching up) instead of delaying it (restart to ready).
        from overlay_master.api import ApiSettings

        settings = ApiSettings(token=token, protect_reads=args.protect_reads)
        url = args.advertise_url or _advertised(args.http, args.self_address)
        return _serve(node, network, settings, http_socket, url)
    finally:
        node.close()


def _advertised(http: str, raft: str) -> str:
    host, _, port = http.rpartition(":")
    if host.strip("[]") in ("0.0.0.0", "::", ""):
        host = raft.rpartition(":")[0]
    return f"http://{host}:{port}"


def _serve(
    node: Node, network: NetworkConfig, settings: ApiSettings, sock: socket.socket, url: str
) -> int:
    outcome = Outcome()
    server: uvicorn.Server | None = None
    tasks: list[asyncio.Task[None]] = []

    def refuse(message: str) -> None:
        log.critical("refusing to start: %s", message)
        outcome.code = EXIT_REFUSED
        if server is not None:
            server.should_exit = True

    async def admit() -> None:
        """Seed an empty log with the config file; then report how the file and the log differ.

        The decision needs every committed network, and the local journal alone may not have
        them all applied (its commit index is saved at most once a second): catch up with the
        leader first. A log that holds networks gets no entry of ours."""
        if not await asyncio.to_thread(node.wait_caught_up, CATCH_UP_TIMEOUT):
            log.warning(
                "no leader within %.0f s: deciding with the local journal only", CATCH_UP_TIMEOUT
            )
        if node.network is None and not await seed():
            return
        logged = node.network
        assert logged is not None
        node.drift = differences(network, logged)
        for line in node.drift:
            log.warning("config file differs from the log (the log's networks apply): %s", line)
        node.admitted = True
        if node.snapshot().replicas.get(node.self_address) != url:
            await write_until_committed(allocator.announce_replica(node.self_address, url))

    async def write_until_committed(command: dict[str, Any]) -> None:
        while True:
            try:
                await node.submit(command, timeout=5.0)
                return
            except NotReadyError as e:
                log.info("waiting for a quorum to announce this replica: %s", e)
                await asyncio.sleep(0.5)

    async def seed() -> bool:
        while True:
            try:
                command = allocator.configure(to_plain(network), seed=True)
                result = await node.submit(command, timeout=5.0)
            except NotReadyError as e:
                log.info("waiting for a quorum to commit the network config: %s", e)
                await asyncio.sleep(0.5)
                continue
            if isinstance(result, allocator.Rejected):
                refuse(f"the log refused the config file: {result.message}")
                return False
            if isinstance(result, allocator.Configured) and result.changed:
                log.info("network config seeded at revision %d", result.revision)
            return True

    async def on_startup() -> None:
        admission = asyncio.get_running_loop().create_task(admit())
        tasks.append(admission)  # keep a reference until it is done

    from overlay_master.api import create_app

    app = create_app(node, settings, on_startup=on_startup)
    server = uvicorn.Server(http_config(app))
    log.info("replica %s serving HTTP on %s", node.raft.self_address, sock.getsockname())
    server.run(sockets=[sock])
    return outcome.code


def http_config(app: Any) -> uvicorn.Config:
    """The web server's set-up (the benchmarks' floor uses the same)."""
    return uvicorn.Config(
        app,
        log_level="warning",
        access_log=False,
        lifespan="on",
        workers=1,
        http="httptools",  # C parser: a fraction of h11's cost per request (bench/findings.md)
        loop="uvloop",
        backlog=LISTEN_BACKLOG,
        # uvicorn closes a connection idle for 5 s by default. An agent applying a big answer
        # (a full state) before it polls again would then find its connection closed: a new
        # TCP connection per poll, and the benchmarks' watchers saw "connection closed" for
        # 978 of 1,000 long polls after a network deletion answered 340 KB to each.
        timeout_keep_alive=KEEP_ALIVE,
    )


def _bind_http(address: str) -> socket.socket:
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise ConfigError([ConfigProblem("--http", address, "must be HOST:PORT")], "command line")
    family = socket.AF_INET6 if ":" in host.strip("[]") else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host.strip("[]"), int(port)))
    except OSError as e:
        sock.close()
        raise BindError(f"cannot bind the HTTP address {address}: {e.strerror}") from e
    sock.listen(LISTEN_BACKLOG)
    sock.set_inheritable(True)
    return sock


def _read_secret(path: str | None, flag: str) -> str | None:
    if path is None:
        return None
    try:
        secret = Path(path).read_text(encoding="utf-8").strip()
    except OSError as e:
        raise ConfigError(
            [ConfigProblem(flag, path, f"cannot be read: {e.strerror}")], "command line"
        ) from e
    if not secret:
        raise ConfigError([ConfigProblem(flag, path, "is empty")], "command line")
    return secret


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
