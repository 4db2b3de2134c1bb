"""``overlay-demo`` (what ``scripts/run`` runs): argv -> the whole system, up until Ctrl-C.

As root: three masters on loopback, three agents in network namespaces on a private underlay,
one container per agent; without root (or without the tools the agents need), the masters only,
and the reason is printed. Exit status: 0 after a stop signal once the system was up, 1 when
start-up failed, was interrupted, or a master or agent exited by itself, 2 for bad arguments.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from overlay_demo import banner
from overlay_demo.cni_runtime import CNI_PATH
from overlay_demo.errors import DemoError, Interrupted
from overlay_demo.hosts import check_prefix
from overlay_demo.stopping import Stopping
from overlay_demo.system import Options, System
from overlay_master import devcluster
from overlay_master.errors import OverlayError

EXIT_FAILED = 1
EXIT_USAGE = 2
TOOLS = {  # what the agents, the containers and the ping need, and the Debian package of each
    "ip": "iproute2",
    "nft": "nftables",
    "ping": "iputils-ping",
}


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="overlay-demo", description=__doc__)
    devcluster.add_arguments(p)
    p.add_argument(
        "--agent-http-port", type=int, default=8111, help="first agent HTTP port (three in a row)"
    )
    p.add_argument(
        "--prefix",
        default="ovdemo-",
        help="name prefix of the demo's network namespaces (leftovers with it are removed)",
    )
    p.add_argument("--network", default="dcos", help="the network the test containers join")
    p.add_argument("--masters-only", action="store_true", help="no agents or containers")
    return p


def masters_only_reason(
    asked: bool,
    euid: int,
    which: Callable[[str], str | None] = shutil.which,
    exists: Callable[[Path], bool] = Path.exists,
) -> str | None:
    """Why the agents cannot run here, or None when they can."""
    if asked:
        return "--masters-only"
    if euid != 0:
        return (
            "not root: the agents and containers live in network namespaces, which only root "
            "can make; run scripts/run as root for the whole system"
        )
    missing = [package for tool, package in TOOLS.items() if which(tool) is None]
    if not exists(CNI_PATH / "bridge"):
        missing.append("containernetworking-plugins")
    if missing:
        return f"missing Debian packages for the agents: {' '.join(missing)} (scripts/run installs them)"
    return None


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    stopping = Stopping()
    stopping.install()
    try:
        prefix = check_prefix(args.prefix)
        cluster = devcluster.layout(args)
    except (DemoError, OverlayError) as e:
        print(f"overlay-demo: {e}", file=sys.stderr)
        return EXIT_USAGE
    reason = masters_only_reason(args.masters_only, os.geteuid())
    options = Options(prefix, args.agent_http_port, args.network, agents=reason is None)
    system = System(cluster, options, stopping)
    status = EXIT_FAILED
    try:
        status = _run(system, reason)
    finally:
        problems = system.stop()
        for problem in problems:
            print(f"overlay-demo: while stopping: {problem}", file=sys.stderr)
        if not problems:
            what = "masters" if reason else "masters, agents, containers and namespaces"
            print(f"overlay-demo: stopped; all its {what} are gone", flush=True)
    return EXIT_FAILED if problems else status


def _run(system: System, reason: str | None) -> int:
    """Start, announce, wait; the exit status."""
    try:
        for note in system.claim():
            print(f"overlay-demo: {note}", flush=True)
        system.start_masters()
        if reason is None:
            system.start_agents()
            system.start_containers()
            system.check_pings()
    except Interrupted as e:
        print(f"overlay-demo: {e}; stopping", file=sys.stderr, flush=True)
        return EXIT_FAILED
    except DemoError as e:
        print(f"overlay-demo: start-up failed: {e}", file=sys.stderr, flush=True)
        return EXIT_FAILED
    print("\n".join(banner.ready_lines(system, reason)), flush=True)
    exited = system.wait()
    if exited is not None:
        print(f"overlay-demo: {exited}", file=sys.stderr, flush=True)
        return EXIT_FAILED
    return 0
