"""Response bytes: the DC/OS documents of a snapshot, encoded once and shared by every reader.

Design notes
------------
* Records are immutable values and a snapshot is taken once per revision, so each agent record is
  encoded once per change (keyed by identity) and each answer once per (since, revision):
  thousands of watchers parked on the same revision cost one encoding.
* Documents are the contract's (``overlay_wire.contract``): a ``WatchDoc`` or ``ClusterStateDoc``
  is built with an empty agent list and dumped key-sorted like every other document, then the
  records, already encoded, are spliced into that list. ``agents`` sorts first in both documents,
  so the bytes are exactly ``dcos_json.dumps`` of the whole document.
* A new network config (``Configured``) is a new object: every cached encoding is dropped.
* Answers are only ever asked for the newest snapshot (every reader takes the snapshot of the
  moment), so once an answer of a newer revision is encoded, those of older revisions are
  dropped; and the cache holds at most ``MAX_ANSWER_BYTES``. Without this, each revision's full
  state (3 MiB at 4,094 agents) stayed cached until 256 answers had piled up: a replica read
  once per write grew by hundreds of MiB (bench/findings.md).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass, field

from overlay_master import dcos_json
from overlay_master.allocator import AgentRecord, ContainerRecord
from overlay_master.changes import CONTAINERS, ChangeLog
from overlay_master.network import NetworkConfig
from overlay_master.network_docs import container_doc
from overlay_wire.contract import ClusterStateDoc, WatchDoc

MAX_ANSWERS = 256  # cached answers (state, and watch per since); cleared whole when exceeded
MAX_ANSWER_BYTES = 64 << 20  # the same for their total size
_AGENTS_HEAD = b'{"agents":['


@dataclass(frozen=True)
class Snapshot:
    """A consistent copy of what readers need, taken under the state lock."""

    network: NetworkConfig | None
    revision: int
    agents: list[AgentRecord]
    containers: Mapping[str, tuple[ContainerRecord, ...]] = field(default_factory=dict)
    replicas: Mapping[str, str] = field(default_factory=dict)  # Raft address -> HTTP URL


class Encoder:
    """Encodes snapshots into answer bytes; deltas come from the replica's ``ChangeLog``."""

    def __init__(self, changes: ChangeLog) -> None:
        self.changes = changes
        self._agents: dict[str, tuple[AgentRecord, bytes]] = {}
        self._network: NetworkConfig | None = None
        self._answers: dict[tuple[str, int, int], bytes] = {}
        self._answer_bytes = 0
        self._newest = 0  # the newest revision an answer was encoded for
        self._lock = threading.Lock()

    def agent_bytes(self, record: AgentRecord, network: NetworkConfig) -> bytes:
        """One agent's record (``GET /overlay-master/agents/{ip}``)."""
        with self._lock:
            self._follow(network)
            cached = self._agents.get(record.ip)
            if cached is not None and cached[0] is record:
                return cached[1]
        encoded = dcos_json.dumps(dcos_json.agent_json(record, network))
        with self._lock:
            self._agents[record.ip] = (record, encoded)
        return encoded

    def _follow(self, network: NetworkConfig) -> None:
        """Under the lock: a new network config drops every cached encoding."""
        if network is not self._network:
            self._agents.clear()
            self._answers.clear()
            self._answer_bytes = 0
            self._network = network

    def state_bytes(self, snap: Snapshot) -> bytes:
        """``/overlay-master/state`` for this snapshot, encoded once per revision."""
        assert snap.network is not None
        key = ("state", 0, snap.revision)  # (flavour, since, revision), as the watch's
        cached = self._answers.get(key)
        if cached is not None:
            return cached
        doc: ClusterStateDoc = {"agents": [], "network": dcos_json.network_json(snap.network)}
        body = self._with_agents(dcos_json.dumps(doc), snap.agents, snap.network)
        self._remember(key, body)
        return body

    def watch_bytes(self, snap: Snapshot, since: int, containers: bool = False) -> bytes:
        """A watch answer: the changes after ``since``, or the full state when we cannot tell;
        with ``containers``, also the container reports that changed (the Networking page)."""
        assert snap.network is not None
        flavour = "watch+containers" if containers else "watch"
        cached = self._answers.get((flavour, since, snap.revision))
        if cached is not None:
            return cached
        if since == snap.revision:
            touched: list[str] | None = []
        elif since <= 0:
            touched = None
        else:
            touched = self.changes.touched_since(since, snap.revision)
        reported: list[str] | None = None
        if containers and touched is not None:
            reported = self.changes.touched_since(since, snap.revision, CONTAINERS)
            if reported is None:
                touched = None
        key = (flavour, since if touched is not None else 0, snap.revision)
        cached = self._answers.get(key)
        if cached is not None:
            self._remember((flavour, since, snap.revision), cached)
            return cached
        if touched is None:
            records, deleted = snap.agents, []
        else:
            present = {r.ip: r for r in snap.agents} if touched else {}
            records = [present[ip] for ip in touched if ip in present]
            deleted = [ip for ip in touched if ip not in present]
        doc: WatchDoc = {
            "agents": [],
            "deleted": deleted,
            "full": touched is None,
            "network": dcos_json.network_json(snap.network),
            "revision": snap.revision,
        }
        if containers:
            ips = list(snap.containers) if reported is None else reported
            doc["containers"] = [
                {"agent": ip, "containers": [container_doc(ip, c) for c in snap.containers[ip]]}
                for ip in ips
                if ip in snap.containers
            ]
        body = self._with_agents(dcos_json.dumps(doc), records, snap.network)
        self._remember(key, body)
        self._remember((flavour, since, snap.revision), body)
        return body

    def _with_agents(
        self, empty: bytes, records: list[AgentRecord], network: NetworkConfig
    ) -> bytes:
        """``empty`` (a document dumped with ``"agents": []``), the records' bytes spliced in."""
        assert empty.startswith(_AGENTS_HEAD + b"]"), "agents must sort first in the document"
        with self._lock:  # once for all records: the first read after a write takes thousands
            self._follow(network)
            cache = self._agents
            parts = [
                found[1] if (found := cache.get(r.ip)) is not None and found[0] is r else None
                for r in records
            ]
        encoded = [
            part if part is not None else self.agent_bytes(record, network)
            for part, record in zip(parts, records, strict=True)
        ]
        return _AGENTS_HEAD + b",".join(encoded) + empty[len(_AGENTS_HEAD) :]

    def _remember(self, key: tuple[str, int, int], body: bytes) -> None:
        with self._lock:
            answers, revision = self._answers, key[2]
            if revision > self._newest:  # older revisions' answers will not be asked again
                self._newest = revision
                self._answers = answers = {k: v for k, v in answers.items() if k[2] >= revision}
                self._answer_bytes = sum(len(v) for v in answers.values())
            too_many = len(answers) >= MAX_ANSWERS
            if too_many or self._answer_bytes + len(body) > MAX_ANSWER_BYTES:
                answers.clear()
                self._answer_bytes = 0
            self._answer_bytes += len(body) - len(answers.get(key, b""))
            answers[key] = body
