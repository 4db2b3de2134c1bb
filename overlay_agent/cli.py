"""``overlay-agent``: command line -> settings -> kernel, client, loop, HTTP server."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from ipaddress import IPv4Address
from pathlib import Path

import uvicorn

from overlay_agent.api import create_app
from overlay_agent.client import MasterClient
from overlay_agent.desired import AgentOptions
from overlay_agent.docker import DEFAULT_SOCKET
from overlay_agent.docker_engine import Docker
from overlay_agent.errors import AgentError, ConfigError
from overlay_agent.firewall import Firewall
from overlay_agent.loop import AgentLoop
from overlay_agent.metrics import Metrics
from overlay_agent.netlink import Kernel
from overlay_agent.reconciler import Reconciler, Settings
from overlay_wire.contract import DEFAULT_VXLAN_PORT

log = logging.getLogger("overlay_agent")

DEFAULT_RUN_DIR = Path("/run/overlay-agent")


@dataclass(frozen=True)
class CliSettings:
    agent: Settings
    masters: list[str]
    token: str | None
    http: tuple[str, int] | None
    resync: float
    watch_timeout: float
    docker_host: str | None = None  # None: Docker support off


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="overlay-agent", description=__doc__)
    p.add_argument("--masters", required=True, help="URL[,URL...] of the overlay masters")
    p.add_argument("--ip", required=True, help="this agent's underlay IPv4 address (its identity)")
    p.add_argument("--netns", help="program this named network namespace instead of our own")
    p.add_argument("--token-file", type=Path, help="file holding the bearer token for the masters")
    p.add_argument(
        "--cni-dir",
        type=Path,
        help="write CNI configuration lists <name>.conflist here (bridge + portmap; podman, "
        "containerd, nerdctl and other libcni runtimes read them)",
    )
    p.add_argument(
        "--mesos-cni-dir",
        type=Path,
        help="also write DC/OS's single-plugin <name>.conf here, for Mesos UCR "
        "(--network_cni_config_dir); must not be --cni-dir",
    )
    p.add_argument(
        "--cni-data-dir",
        type=Path,
        help="host-local lease directory (default /run/overlay-agent/<netns|host>/cni/networks)",
    )
    p.add_argument("--no-mesos-bridge", action="store_true", help="do not ask for m-<name>")
    p.add_argument("--no-docker-bridge", action="store_true", help="do not ask for d-<name>")
    p.add_argument(
        "--docker-host",
        help="Docker daemon for the d-<name> networks, unix:///PATH or tcp://HOST:PORT (default: "
        f"DOCKER_HOST, else {DEFAULT_SOCKET} if it exists; without --netns only)",
    )
    p.add_argument("--no-docker", action="store_true", help="create no Docker networks")
    p.add_argument("--http", help="HOST:PORT for /overlay-agent/overlay, /readyz, /metrics")
    p.add_argument("--vxlan-port", type=int, default=DEFAULT_VXLAN_PORT, help="VXLAN UDP port")
    p.add_argument("--resync", type=float, default=10.0, help="seconds between repair passes")
    p.add_argument("--watch-timeout", type=float, default=30.0, help="long-poll seconds")
    p.add_argument("--log-level", default="INFO")
    return p


def settings(argv: Sequence[str] | None = None) -> tuple[CliSettings, str]:
    args = parser().parse_args(argv)
    try:
        ip = IPv4Address(args.ip)
    except ValueError as e:
        raise ConfigError(f"--ip: {e}") from e
    if not 0 < args.vxlan_port < 65536:
        raise ConfigError(f"--vxlan-port: {args.vxlan_port} is not a UDP port")
    if args.resync <= 0:
        raise ConfigError("--resync must be positive")
    masters = [u.strip() for u in args.masters.split(",") if u.strip()]
    if not masters or not all(u.startswith(("http://", "https://")) for u in masters):
        raise ConfigError(f"--masters: expected http(s) URLs, got {args.masters!r}")
    mesos, cni = args.mesos_cni_dir, args.cni_dir
    if mesos is not None and cni is not None and mesos.resolve() == cni.resolve():
        # One directory with both forms would show a runtime two networks of one name.
        raise ConfigError("--mesos-cni-dir must be another directory than --cni-dir")
    data_dir = args.cni_data_dir or DEFAULT_RUN_DIR / (args.netns or "host") / "cni" / "networks"
    options = AgentOptions(
        ip=ip,
        vxlan_port=args.vxlan_port,
        mesos_bridge=not args.no_mesos_bridge,
        docker_bridge=not args.no_docker_bridge,
    )
    agent = Settings(
        options=options,
        netns=args.netns,
        cni_dir=args.cni_dir,
        cni_data_dir=data_dir,
        mesos_cni_dir=args.mesos_cni_dir,
    )
    return (
        CliSettings(
            agent=agent,
            masters=masters,
            token=_token(args.token_file),
            http=_host_port(args.http) if args.http else None,
            resync=args.resync,
            watch_timeout=args.watch_timeout,
            docker_host=docker_host(args.docker_host, args.no_docker, args.netns),
        ),
        args.log_level,
    )


def docker_host(
    flag: str | None,
    off: bool,
    netns: str | None,
    environ: Mapping[str, str] = os.environ,
    exists: Callable[[str], bool] = os.path.exists,
) -> str | None:
    """The Docker daemon to use, or None for no Docker support.

    Without ``--docker-host`` the defaults apply only when the agent programs its own namespace:
    DOCKER_HOST and /var/run/docker.sock name a daemon of the host, whose bridges would land in
    the host's namespace, not in ``--netns``.
    """
    if off:
        if flag:
            raise ConfigError("--docker-host and --no-docker exclude each other")
        return None
    if flag:
        return _docker_url("--docker-host", flag)
    if netns is not None:
        return None
    if environ.get("DOCKER_HOST"):
        return _docker_url("DOCKER_HOST", environ["DOCKER_HOST"])
    return f"unix://{DEFAULT_SOCKET}" if exists(DEFAULT_SOCKET) else None


def _docker_url(source: str, url: str) -> str:
    if not url.startswith(("unix:///", "tcp://")):
        raise ConfigError(f"{source}: expected unix:///PATH or tcp://HOST:PORT, got {url!r}")
    return url


def _token(path: Path | None) -> str | None:
    if path is None:
        return None
    try:
        token = path.read_text().strip()
    except OSError as e:
        raise ConfigError(f"--token-file: {e}") from e
    if not token:
        # The masters refuse an empty token file too: "no token" is said by leaving the flag out.
        raise ConfigError(f"--token-file: {path} is empty")
    return token


def _host_port(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit():
        raise ConfigError(f"--http: expected HOST:PORT, got {text!r}")
    return host, int(port)


async def serve(cfg: CliSettings) -> None:
    loop = asyncio.get_running_loop()
    executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="kernel")
    agent = cfg.agent
    # pyroute2's sync IPRoute must be created off the event loop, on the thread that uses it.
    kernel = await loop.run_in_executor(executor, Kernel, agent.netns, agent.options.ip)
    client = MasterClient(cfg.masters, cfg.token)
    metrics = Metrics()
    engine = Docker(cfg.docker_host) if cfg.docker_host else None
    reconciler = Reconciler(agent, kernel, Firewall(agent.netns), engine)
    runner = AgentLoop(
        agent, reconciler, client, metrics, cfg.resync, cfg.watch_timeout, executor=executor
    )
    tasks = [asyncio.create_task(runner.run(), name="agent")]
    if cfg.http is not None:
        server = _Server(
            uvicorn.Config(
                create_app(runner), host=cfg.http[0], port=cfg.http[1], log_level="warning"
            )
        )
        tasks.append(asyncio.create_task(server.serve(), name="http"))
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    waiter = asyncio.create_task(stop.wait())
    try:
        done, _ = await asyncio.wait([*tasks, waiter], return_when=asyncio.FIRST_COMPLETED)
        for task in done:
            if task is not waiter and task.exception() is not None:
                raise task.exception()  # type: ignore[misc]
    finally:
        for task in [*tasks, waiter]:
            task.cancel()
        await asyncio.gather(*tasks, waiter, return_exceptions=True)
        await client.aclose()
        await loop.run_in_executor(executor, kernel.close)
        if engine is not None:
            engine.close()
        executor.shutdown(wait=True)


class _Server(uvicorn.Server):
    """uvicorn without its own signal handling: the agent owns SIGTERM/SIGINT."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def main(argv: Sequence[str] | None = None) -> int:
    try:
        cfg, level = settings(argv)
    except AgentError as e:
        print(f"overlay-agent: {e}", flush=True)
        return 2
    logging.basicConfig(
        level=level.upper(),
        format=f"%(asctime)s {cfg.agent.options.ip} %(levelname)s %(name)s: %(message)s",
    )
    log.info(
        "starting (pid %d, netns %s, docker %s)",
        os.getpid(),
        cfg.agent.netns or "-",
        cfg.docker_host or "off",
    )
    try:
        asyncio.run(serve(cfg))
    except AgentError as e:
        log.error("%s", e)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
