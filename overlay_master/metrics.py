"""``GET /metrics``: Prometheus gauges read from the replica on every scrape.

Nothing is updated on the request or apply path: the collector reads the Raft status once and
the live allocation state's pool counters once per scrape.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from overlay_master.allocator import ClusterState
from overlay_master.replica import Replica
from overlay_wire.contract import PROMETHEUS_TEXT

CONTENT_TYPE = PROMETHEUS_TEXT  # the text exposition format, version 0.0.4, UTF-8


class ReplicaCollector(Collector):
    """Reads the replica on every scrape."""

    def __init__(self, node: Replica) -> None:
        self.node = node

    def collect(self) -> Iterator[GaugeMetricFamily]:
        status = self.node.status()
        role = GaugeMetricFamily(
            "overlay_master_raft_role", "1 for this replica's role", labels=["role"]
        )
        current = self.node.role(status)
        for name in ("follower", "candidate", "leader"):
            role.add_metric([name], 1.0 if current == name else 0.0)
        yield role
        for key, name in (
            ("raft_term", "term"),
            ("commit_idx", "commit_index"),
            ("last_applied", "applied_index"),
        ):
            yield GaugeMetricFamily(
                f"overlay_master_raft_{name}", f"Raft {name}", value=status.get(key, 0)
            )
        state = self.node.pools()
        yield GaugeMetricFamily("overlay_master_revision", "state revision", value=state.revision)
        yield GaugeMetricFamily(
            "overlay_master_agents", "registered agents", value=len(state.agents)
        )
        yield from pool_metrics(state)


class Metrics:
    """The registry of one app: ``text()`` is the body of ``/metrics``."""

    def __init__(self, node: Replica) -> None:
        self.registry = CollectorRegistry()
        self.registry.register(ReplicaCollector(node))

    def text(self) -> bytes:
        return generate_latest(self.registry)


def pool_metrics(state: ClusterState) -> Iterator[GaugeMetricFamily]:
    blocks = {
        kind: GaugeMetricFamily(
            f"overlay_master_blocks_{kind}",
            f"agent blocks {kind} per overlay",
            labels=["overlay", "family"],
        )
        for kind in ("total", "used", "free")
    }
    for family, pools in (("ipv4", state.blocks), ("ipv6", state.blocks6)):
        for name, pool in list(pools.items()):
            for kind, value in (("total", pool.size), ("used", pool.used), ("free", pool.free)):
                blocks[kind].add_metric([name, family], float(value))
    yield from blocks.values()
    vteps = {
        kind: GaugeMetricFamily(
            f"overlay_master_vteps_{kind}", f"VTEP addresses {kind}", labels=["family"]
        )
        for kind in ("total", "used", "free")
    }
    for family, vtep_pool in (("ipv4", state.vteps), ("ipv6", state.vteps6)):
        if vtep_pool is not None:
            for kind, value in (
                ("total", vtep_pool.size),
                ("used", vtep_pool.used),
                ("free", vtep_pool.free),
            ):
                vteps[kind].add_metric([family], float(value))
    yield from vteps.values()
