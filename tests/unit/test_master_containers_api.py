"""Container reports over the HTTP API (fake replica, real allocator): reported whole by agents,
listed and filtered, counted in each network's capacity, carried by the watch on request."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from overlay_wire.contract import (
    AGENTS_PATH,
    CONTAINERS_PATH,
    DELETE_AGENTS_PATH,
    NETWORKS_PATH,
    WATCH_PATH,
    containers_path,
)
from tests.fakes.app import AUTH, serve
from tests.fakes.node import FakeNode

pytestmark = [pytest.mark.unit, pytest.mark.anyio]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def register(client: httpx.AsyncClient, ip: str) -> None:
    assert (await client.post(AGENTS_PATH, json={"ip": ip}, headers=AUTH)).status_code == 200


async def report(client: httpx.AsyncClient, ip: str, *entries: dict[str, Any]) -> httpx.Response:
    return await client.put(containers_path(ip), json={"containers": list(entries)}, headers=AUTH)


MESOS = {
    "id": "cni-1",
    "network": "dcos",
    "half": "mesos",
    "address": "9.0.0.2",
    "interface": "eth0",
}
DOCKER = {
    "id": "abc123",
    "network": "dcos",
    "half": "docker",
    "address": "9.0.0.98",
    "name": "web",
    "mac": "02:42:09:00:00:62",
}


async def test_reported_containers_are_listed_filtered_and_counted() -> None:
    node = FakeNode()
    async with serve(node) as client:
        await register(client, "10.0.0.1")  # 9.0.0.0/26
        await register(client, "10.0.0.2")  # 9.0.0.64/26
        first = await report(client, "10.0.0.1", MESOS)
        assert first.status_code == 200
        assert first.json() == {"agent": "10.0.0.1", "revision": node.revision, "containers": 1}
        assert (await report(client, "10.0.0.2", DOCKER)).status_code == 200
        listed = (await client.get(CONTAINERS_PATH)).json()
        assert listed["containers"] == [
            {**MESOS, "agent": "10.0.0.1"},
            {**DOCKER, "agent": "10.0.0.2"},
        ]
        only = (await client.get(CONTAINERS_PATH, params={"agent": "10.0.0.2"})).json()
        assert [c["id"] for c in only["containers"]] == ["abc123"]
        none = (await client.get(CONTAINERS_PATH, params={"network": "other"})).json()
        assert none["containers"] == []
        dcos = (await client.get(f"{NETWORKS_PATH}/dcos")).json()
        assert dcos["containers"] == 2
        assert dcos["agents"][0]["mesos"] == {"total": 29, "used": 1, "free": 28}
        assert dcos["agents"][1]["docker"] == {"total": 29, "used": 1, "free": 28}
        assert dcos["capacity"]["mesos"] == {"total": 58, "used": 1, "free": 57}
        # replaced whole: the next report without it removes it
        await report(client, "10.0.0.1")
        assert [c["id"] for c in (await client.get(CONTAINERS_PATH)).json()["containers"]] == [
            "abc123"
        ]
        # a deleted agent's containers go with it
        await client.post(DELETE_AGENTS_PATH, json={"agents": ["10.0.0.2"]}, headers=AUTH)
        assert (await client.get(CONTAINERS_PATH)).json()["containers"] == []


async def test_bad_reports_are_refused_and_change_nothing() -> None:
    node = FakeNode()
    async with serve(node) as client:
        await register(client, "10.0.0.1")
        revision = node.revision
        outside = await report(client, "10.0.0.1", {**MESOS, "address": "9.0.0.40"})
        assert outside.status_code == 422 and outside.json()["error"] == "invalid_report"
        assert "mesos half" in outside.json()["message"]
        shape = await report(client, "10.0.0.1", {**MESOS, "half": "host"})
        assert shape.status_code == 422 and shape.json()["error"] == "invalid_request"
        unknown = await report(client, "10.0.0.9", MESOS)
        assert unknown.status_code == 404 and unknown.json()["error"] == "unknown_agent"
        assert (
            await client.put(containers_path("10.0.0.1"), json={"containers": []})
        ).status_code == 401
        assert node.revision == revision


async def test_the_watch_carries_container_changes_only_when_asked() -> None:
    node = FakeNode()
    async with serve(node) as client:
        await register(client, "10.0.0.1")
        await register(client, "10.0.0.2")
        since = node.revision
        await report(client, "10.0.0.1", MESOS)
        plain = (await client.get(WATCH_PATH, params={"since": since, "timeout": 0})).json()
        assert plain["revision"] == since + 1 and plain["agents"] == []
        assert "containers" not in plain  # agents are not sent what they do not need
        page = await client.get(
            WATCH_PATH, params={"since": since, "timeout": 0, "include": "containers"}
        )
        assert page.json()["agents"] == []
        assert page.json()["containers"] == [
            {"agent": "10.0.0.1", "containers": [{**MESOS, "agent": "10.0.0.1"}]}
        ]
        full = (await client.get(WATCH_PATH, params={"include": "containers", "timeout": 0})).json()
        assert full["full"] is True and [c["agent"] for c in full["containers"]] == ["10.0.0.1"]
        bad = await client.get(WATCH_PATH, params={"include": "everything"})
        assert bad.status_code == 422


async def test_a_network_with_reported_containers_is_in_use() -> None:
    node = FakeNode()
    async with serve(node) as client:
        await register(client, "10.0.0.1")
        blue = {"name": "blue", "subnet": "10.10.0.0/16", "prefix": 24}
        await client.post(NETWORKS_PATH, json=blue, headers=AUTH)
        on_blue = {"id": "c", "network": "blue", "half": "mesos", "address": "10.10.0.2"}
        await report(client, "10.0.0.1", on_blue)
        refused = await client.delete(f"{NETWORKS_PATH}/blue", headers=AUTH)
        assert refused.status_code == 409 and "report containers" in refused.json()["message"]
        await report(client, "10.0.0.1")
        assert (await client.delete(f"{NETWORKS_PATH}/blue", headers=AUTH)).status_code == 200
