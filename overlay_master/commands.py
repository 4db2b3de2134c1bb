"""Commands of the replicated log, as plain data (dicts of str/int/bool/list).

Plain data pickles the same forever, while our classes may move between modules: a journal
written today must replay into the same state after any refactoring. The op names are part of
the log format; never rename one (add a new op instead).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any


def configure(network: Mapping[str, Any], seed: bool = False) -> dict[str, Any]:
    """The network config. ``seed``: only if the log holds none yet (a replica starting with a
    config file); without it (entries written before networks were live objects) a compatible
    config replaces the logged one."""
    command: dict[str, Any] = {"op": "configure", "network": dict(network)}
    if seed:
        command["seed"] = True
    return command


def add_network(overlay: Mapping[str, Any]) -> dict[str, Any]:
    """A virtual network, as in the config file: name, subnet/prefix, subnet6/prefix6,
    enabled, allow_from."""
    return {"op": "add_network", "overlay": dict(overlay)}


def update_network(
    name: str, enabled: bool | None = None, allow_from: Iterable[str] | None = None
) -> dict[str, Any]:
    changes: dict[str, Any] = {}
    if enabled is not None:
        changes["enabled"] = enabled
    if allow_from is not None:
        changes["allow_from"] = list(allow_from)
    return {"op": "update_network", "name": name, "changes": changes}


def delete_network(name: str, force: bool = False) -> dict[str, Any]:
    return {"op": "delete_network", "name": name, "force": force}


def register(ip: str, mesos_bridge: bool = True, docker_bridge: bool = True) -> dict[str, Any]:
    return {
        "op": "register",
        "ip": ip,
        "mesos_bridge": mesos_bridge,
        "docker_bridge": docker_bridge,
    }


def delete(ips: Iterable[str]) -> dict[str, Any]:
    return {"op": "delete", "ips": list(ips)}


def report_status(ip: str, overlays: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """``overlays``: ``{"name": ..., "status": "STATUS_OK"|..., "error": optional text}``."""
    return {"op": "status", "ip": ip, "overlays": [dict(o) for o in overlays]}


def report_containers(ip: str, containers: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """The full list of containers on an agent's bridges (replaces the previous report):
    ``{"id", "network", "half": "mesos"|"docker", "address"?, "address6"?, "name"?, "mac"?,
    "interface"?}``."""
    return {"op": "containers", "ip": ip, "containers": [dict(c) for c in containers]}


def announce_replica(raft: str, http: str) -> dict[str, Any]:
    """Where the replica with Raft address ``raft`` serves its HTTP API."""
    return {"op": "replica", "raft": raft, "http": http}


def barrier() -> dict[str, Any]:
    return {"op": "barrier"}


def batch(commands: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """Several commands in one log entry (the node coalesces concurrent writes this way)."""
    return {"op": "batch", "commands": [dict(c) for c in commands]}
