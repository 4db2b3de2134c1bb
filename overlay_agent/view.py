"""The agent's HTTP view of itself: DC/OS's ``AgentInfo`` for ``GET /overlay-agent/overlay``
(docs/api.md), our record as the master sent it plus each overlay's local ``state`` and, per
Mesos bridge, the container-address ``capacity`` read from host-local's leases."""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from overlay_agent import cni
from overlay_agent.cluster import ClusterState
from overlay_agent.desired import Bridge
from overlay_agent.errors import CniError
from overlay_agent.metrics import Metrics
from overlay_agent.reconciler import Outcome, OverlayStatus
from overlay_wire.contract import Status

KINDS = ("total", "used", "free")


def agent_document(
    ip: str,
    state: ClusterState,
    outcome: Outcome | None,
    data_dir: Path,
    metrics: Metrics | None = None,
) -> dict[str, Any]:
    """DC/OS's ``AgentInfo`` for us: overlays with ``state``, Mesos bridges with ``capacity``.

    With ``metrics``, the per-bridge address gauges are refreshed from the same reading.
    """
    record = state.agents.get(ip, {})
    want = outcome.want if outcome is not None else None
    bridges = {b.name: b for b in want.bridges} if want is not None else {}
    statuses = outcome.statuses if outcome is not None else {}
    overlays, measured = [], set()
    for overlay in record.get("overlays", []):
        doc = dict(overlay)
        name = str(doc.get("info", {}).get("name", ""))
        status = statuses.get(name, OverlayStatus(Status.CONFIGURING))
        doc["state"] = {k: v for k, v in status.wire(name).items() if k != "name"}
        mesos = doc.get("mesos_bridge")
        if isinstance(mesos, Mapping) and mesos.get("name") in bridges:
            bridge = bridges[str(mesos["name"])]
            doc["mesos_bridge"] = {**mesos, "capacity": _capacity(name, bridge, data_dir, metrics)}
            measured.add(bridge.name)
        overlays.append(doc)
    if metrics is not None:
        _forget_gone(metrics, measured)
    return {"ip": ip, "overlays": overlays}


def _forget_gone(metrics: Metrics, bridges: set[str]) -> None:
    """A network deleted takes its bridge's series with it (else they report the last value
    forever)."""
    for bridge in metrics.address_bridges - bridges:
        for kind in KINDS:
            with contextlib.suppress(KeyError):  # a concurrent scrape removed it already
                metrics.addresses.remove(bridge, kind)
    metrics.address_bridges &= bridges


def _capacity(
    overlay: str, bridge: Bridge, data_dir: Path, metrics: Metrics | None
) -> dict[str, Any]:
    try:
        c = cni.capacity(overlay, bridge, data_dir)
    except CniError as e:
        return {"error": str(e)}
    if metrics is not None:
        for kind, value in zip(KINDS, (c.total, c.used, c.free), strict=True):
            metrics.addresses.labels(bridge.name, kind).set(value)
        metrics.address_bridges.add(bridge.name)
    return {
        "total": c.total,
        "used": c.used,
        "free": c.free,
        "addresses": [str(a) for a in c.addresses],
    }
