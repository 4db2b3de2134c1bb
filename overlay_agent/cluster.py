"""PURE: the agent's local copy of the cluster state, kept up to date from watch answers.

A watch answer (docs/api.md) is either full (replace everything) or a delta (changed or added
agent records, deleted agent IPs, and the current network). Applying answers in order gives the
same document the masters serve from ``/overlay-master/state``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from overlay_agent.errors import StateError


@dataclass(frozen=True)
class ClusterState:
    revision: int = 0
    network: Mapping[str, Any] = field(default_factory=dict)
    agents: Mapping[str, Mapping[str, Any]] = field(default_factory=lambda: MappingProxyType({}))

    def same_content(self, other: ClusterState) -> bool:
        """The same parts (the same objects, whatever the revision): the same content."""
        return self.network is other.network and self.agents is other.agents

    def document(self) -> dict[str, Any]:
        """The ``/overlay-master/state`` shape: ``{"agents": [...], "network": {...}}``."""
        return {"agents": [self.agents[ip] for ip in sorted(self.agents)], "network": self.network}

    def apply(self, answer: Mapping[str, Any]) -> ClusterState:
        """The state after one watch answer; raises ``StateError`` if the answer is malformed."""
        revision = answer.get("revision")
        records = answer.get("agents", [])
        deleted = answer.get("deleted", [])
        network = answer.get("network", self.network)
        if not isinstance(revision, int) or isinstance(revision, bool):
            raise StateError(f"watch answer without an integer revision: {revision!r}")
        if not isinstance(records, list) or not isinstance(deleted, list):
            raise StateError("watch answer 'agents' and 'deleted' must be lists")
        if not isinstance(network, Mapping):
            raise StateError("watch answer 'network' must be an object")
        if not answer.get("full") and not records and not deleted and network == self.network:
            # A revision that changed nothing an agent reads (a container report, a replica
            # announcement): keep the same parts, so that what was computed from them is reused.
            return ClusterState(revision, self.network, self.agents)
        agents = {} if answer.get("full") else dict(self.agents)
        for ip in deleted:
            agents.pop(str(ip), None)
        for record in records:
            if not isinstance(record, Mapping) or not isinstance(record.get("ip"), str):
                raise StateError(f"watch answer has an agent record without an ip: {record!r}")
            agents[record["ip"]] = record
        return ClusterState(revision, network, MappingProxyType(agents))

    @classmethod
    def from_document(cls, document: Mapping[str, Any], revision: int = 0) -> ClusterState:
        """A state from a ``/overlay-master/state`` document (or a test's hand-written one)."""
        return cls().apply({**document, "revision": revision, "full": True})
