"""Commands of the replicated log, as plain data (dicts of str/int/bool/list).

Plain data pickles the same forever, while our classes may move between modules: a journal
written today must replay into the same state after any refactoring. The op names are part of
the log format; never rename one (add a new op instead).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any


def configure(network: Mapping[str, Any]) -> dict[str, Any]:
    return {"op": "configure", "network": dict(network)}


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


def barrier() -> dict[str, Any]:
    return {"op": "barrier"}


def batch(commands: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """Several commands in one log entry (the node coalesces concurrent writes this way)."""
    return {"op": "batch", "commands": [dict(c) for c in commands]}
