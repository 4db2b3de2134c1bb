"""``GET /overlay-master/cluster``: every replica, its role and health, as one replica sees them.

Each replica announces where it serves HTTP through the log (``announce_replica``, at start-up,
only when it changed), so any replica can name the others. The answering replica asks each of
them for ``/readyz`` and ``/overlay-master/leader`` (in parallel, one second each: a replica that
does not answer is shown unreachable, never waited for), and answers for itself from memory.
``httpx`` is imported when the route is first asked, not at start-up: it brings in ``rich`` and
was a quarter of a replica's import time (restart to ready, bench/findings.md).
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from fastapi.responses import Response

from overlay_master import openapi
from overlay_master.replica import Replica
from overlay_master.routing import Routes, doc_answer
from overlay_wire.contract import CLUSTER_PATH, LEADER_PATH, ClusterDoc, ReplicaDoc

if TYPE_CHECKING:
    import httpx

ASK_TIMEOUT = 1.0


def add_cluster_routes(routes: Routes) -> None:
    node = routes.node

    @routes.route("GET", CLUSTER_PATH, openapi.responses("ClusterDoc"))
    async def cluster() -> Response:
        import httpx

        snap = node.snapshot()
        addresses = dict.fromkeys([node.self_address, *node.peers, *snap.replicas])
        async with httpx.AsyncClient(timeout=ASK_TIMEOUT) as client:
            found = await asyncio.gather(
                *(_replica(node, raft, snap.replicas.get(raft), client) for raft in addresses)
            )
        doc: ClusterDoc = {"self": node.self_address, "revision": snap.revision, "replicas": found}
        leader = node.leader()
        if leader is not None:
            doc["leader"] = leader
        return doc_answer(doc, snap.revision)


async def _replica(
    node: Replica, raft: str, http: str | None, client: httpx.AsyncClient
) -> ReplicaDoc:
    doc: ReplicaDoc = {"raft": raft, "self": raft == node.self_address, "reachable": False}
    if http is not None:
        doc["http"] = http
    if doc["self"]:
        doc["ready"], doc["reason"] = node.ready()
        doc["reachable"], doc["role"] = True, node.role()
        return doc
    if http is None:
        return doc
    import httpx

    try:
        ready_answer, leader_answer = await asyncio.gather(
            client.get(f"{http}/readyz"), client.get(f"{http}{LEADER_PATH}")
        )
        readiness, leadership = ready_answer.json(), leader_answer.json()
        doc["ready"], doc["reason"] = bool(readiness["ready"]), str(readiness["reason"])
        doc["role"], doc["reachable"] = str(leadership["role"]), True
    except (httpx.HTTPError, ValueError, KeyError, TypeError):
        pass  # shown unreachable
    return doc
