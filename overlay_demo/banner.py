"""What the terminal shows once the system is up: where to look and what to try.

The lines are stable on purpose: the CI test reads the page URL and the ping command from them.
"""

from __future__ import annotations

import os
import shlex
import sys
from pathlib import Path

from overlay_demo.system import System
from overlay_master import devcluster

DEV_HTTP = "127.0.0.1:8101"  # overlayctl's defaults: the dev cluster seen from the repository
DEV_TOKEN = Path("dev-cluster-data/api-token")


def page_url(system: System) -> str:
    return f"{system.cluster.urls[0]}/"


def ready_lines(system: System, masters_only: str | None) -> list[str]:
    if masters_only is not None:
        return [
            f"overlay demo: the masters only ({masters_only})",
            "overlay master dev cluster is ready (3 replicas; Ctrl-C stops them)",
            f"  Networking page: {page_url(system)}",
            *devcluster.master_lines(system.cluster),
            f"  {overlayctl(system)} status",
        ]
    return [*_system_lines(system), "Try:", *_try_lines(system)]


def _system_lines(system: System) -> list[str]:
    c = system.cluster
    lines = [
        f"overlay demo is up: 3 masters, {len(system.agents)} agents in network namespaces, a "
        "container on each (Ctrl-C stops them all and removes every namespace)",
        f"  Networking page: {page_url(system)}",
        f"  masters: {' '.join(c.urls)}   logs: {c.data}/replica-N.log",
        f"  API token (for writes): {c.token}",
    ]
    for a in system.agents:
        lines.append(
            f"  agent {a.k}: {a.ip} in netns {a.ns}   http://{a.http}/overlay-agent/overlay"
            f"   log: {a.log}"
        )
    for box in system.containers:
        lines.append(
            f"  container {box.ns} on agent {box.agent.k}: {box.attachment.address} "
            f"(network {box.attachment.network.name})"
        )
    return lines


def _try_lines(system: System) -> list[str]:
    c1, c2 = system.containers[0], system.containers[1]
    ctl = overlayctl(system)
    return [
        f"  ip netns exec {c1.ns} ping -c 3 {c2.attachment.address}"
        f"      # agent {c1.agent.k}'s container to agent {c2.agent.k}'s, over VXLAN",
        f"  {ctl} status",
        f"  {ctl} containers",
        f"  curl -s {system.cluster.urls[1]}/overlay-master/containers",
    ]


def overlayctl(system: System) -> str:
    """The overlayctl command line for this cluster: bare where its defaults find it."""
    program = _relative(Path(sys.executable).parent / "overlayctl")
    c = system.cluster
    if c.http[0] == DEV_HTTP and c.token == DEV_TOKEN.resolve():
        return program
    masters = ",".join(c.urls)
    return f"{program} --masters {masters} --token-file {shlex.quote(_relative(c.token))}"


def _relative(path: Path) -> str:
    try:
        return os.path.relpath(path) if path.is_relative_to(Path.cwd()) else str(path)
    except ValueError:
        return str(path)
