"""The network and container routes (docs/api.md, "Networks" and "Containers").

Networks are live objects of the log (``lifecycle``); a request is validated before it is
proposed, for a quick answer that stores nothing, and the log checks it again on the state the
entry meets. Container reports come from agents (replaced whole) and are read by the Networking
page and ``overlayctl containers``.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Path, Query
from fastapi.responses import Response

from overlay_master import allocator
from overlay_master.encoding import Snapshot
from overlay_master.http_edge import ApiError, check_ip
from overlay_master.network_docs import container_list, network_doc, network_list
from overlay_master.network_edits import parse_new_network
from overlay_master.routing import AgentIp, Routes, doc_answer
from overlay_master.schema import AddNetwork, ReportContainers, UpdateNetwork
from overlay_wire.contract import AGENTS_PATH, CONTAINERS_PATH, NETWORKS_PATH

NETWORK_PATH = NETWORKS_PATH + "/{name}"
AGENT_CONTAINERS_PATH = AGENTS_PATH + "/{ip:agent}/containers"
NetworkName = Annotated[str, Path(description="the network's name", max_length=64)]
NetworkFilter = Annotated[str | None, Query(description="only containers on this network")]
AgentFilter = Annotated[
    str | None,
    Query(description="only containers on this agent", json_schema_extra={"format": "ipv4"}),
]


def add_network_routes(routes: Routes) -> None:
    # -- containers ---------------------------------------------------------------------------

    @routes.route(
        "PUT",
        AGENT_CONTAINERS_PATH,
        routes.answers("ContainersReportedDoc", 404, 422, 500, 503, access="write"),
        "write",
    )
    async def report_containers(ip: AgentIp, body: ReportContainers) -> Response:
        canonical = check_ip(ip)
        entries = [c.model_dump(mode="json", exclude_none=True) for c in body.containers]
        result = await routes.write(allocator.report_containers(canonical, entries))
        assert isinstance(result, allocator.ContainersReported)
        doc = {"agent": result.agent, "revision": result.revision, "containers": result.count}
        return doc_answer(doc, result.revision)

    @routes.route(
        "GET", CONTAINERS_PATH, routes.answers("ContainerListDoc", 422, 503, access="read"), "read"
    )
    async def containers(
        network: NetworkFilter = None, agent: AgentFilter = None, consistent: bool = True
    ) -> Response:
        canonical = check_ip(agent) if agent is not None else None
        snap = await routes.linearizable(consistent)
        return doc_answer(container_list(snap, network, canonical), snap.revision)

    # -- networks ---------------------------------------------------------------------------

    def one_network(name: str, snap: Snapshot) -> Response:
        assert snap.network is not None
        config = snap.network.overlay(name)
        if config is None:
            raise ApiError(404, "unknown_network", f"there is no network {name!r}")
        return doc_answer(network_doc(config, snap.agents, snap.containers), snap.revision)

    @routes.route(
        "GET", NETWORKS_PATH, routes.answers("NetworkListDoc", 422, 503, access="read"), "read"
    )
    async def networks(consistent: bool = True) -> Response:
        snap = await routes.linearizable(consistent)
        return doc_answer(network_list(snap), snap.revision)

    @routes.route(
        "GET",
        NETWORK_PATH,
        routes.answers("VirtualNetworkDoc", 404, 422, 503, access="read"),
        "read",
    )
    async def network(name: NetworkName, consistent: bool = True) -> Response:
        return one_network(name, await routes.linearizable(consistent))

    @routes.route(
        "POST",
        NETWORKS_PATH,
        routes.answers("VirtualNetworkDoc", 409, 422, 500, 503, access="write", success=201),
        "write",
    )
    async def add_network(body: AddNetwork) -> Response:
        plain = body.model_dump(mode="json", exclude_none=True)
        known = routes.node.network
        if known is not None:  # a quick answer; the log checks again on the state it meets
            _, problems, conflicts = parse_new_network(plain, known)
            if problems or conflicts:
                status = 422 if problems else 409
                reason = (
                    "invalid_network"
                    if problems
                    else ("network_exists" if conflicts[0].field == "name" else "network_overlap")
                )
                raise ApiError(status, reason, "; ".join(str(p) for p in problems or conflicts))
        result = await routes.write(allocator.add_network(plain))
        assert isinstance(result, allocator.NetworkChanged)
        answer = one_network(result.name, routes.node.snapshot())
        answer.status_code = 201
        return answer

    @routes.route(
        "PATCH",
        NETWORK_PATH,
        routes.answers("VirtualNetworkDoc", 404, 422, 500, 503, access="write"),
        "write",
    )
    async def update_network(name: NetworkName, body: UpdateNetwork) -> Response:
        command = allocator.update_network(name, body.enabled, body.allow_from)
        result = await routes.write(command)
        assert isinstance(result, allocator.NetworkChanged)
        return one_network(result.name, routes.node.snapshot())

    @routes.route(
        "DELETE",
        NETWORK_PATH,
        routes.answers("NetworkDeletedDoc", 404, 409, 422, 500, 503, access="write"),
        "write",
    )
    async def delete_network(name: NetworkName, force: bool = False) -> Response:
        result = await routes.write(allocator.delete_network(name, force))
        assert isinstance(result, allocator.NetworkChanged)
        body = {"name": result.name, "revision": result.revision, "agents": list(result.agents)}
        return doc_answer(body, result.revision)
