"""Prometheus metrics of one agent (a registry of its own: no process-global state)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.reconciles = Counter(
            "overlay_agent_reconciles", "Reconcile passes by result", ["result"], registry=r
        )
        self.writes = Counter(
            "overlay_agent_kernel_writes",
            "Netlink messages, sysctl writes, nft transactions and CNI files written",
            registry=r,
        )
        self.operations = Counter(
            "overlay_agent_operations", "Planned kernel operations applied", registry=r
        )
        self.duration = Histogram(
            "overlay_agent_reconcile_seconds", "Duration of a reconcile pass", registry=r
        )
        self.revision = Gauge(
            "overlay_agent_revision", "Cluster-state revision last reconciled", registry=r
        )
        self.ready = Gauge("overlay_agent_ready", "1 if the kernel matches the state", registry=r)
        self.peers = Gauge("overlay_agent_peers", "Remote agents programmed", registry=r)
        self.master_failures = Gauge(
            "overlay_agent_master_failures", "Failed requests to masters so far", registry=r
        )
        self.addresses = Gauge(
            "overlay_agent_bridge_addresses",
            "Container addresses of a bridge (kind: total, used, free)",
            ["bridge", "kind"],
            registry=r,
        )
        self.address_bridges: set[str] = set()  # bridges with series in ``addresses``
