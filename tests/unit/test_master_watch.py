"""The raw watch handler over ASGI, on a fake replica running the real allocator and change log."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from overlay_master.http_edge import ApiSettings
from overlay_wire.contract import AGENTS_PATH, DELETE_AGENTS_PATH, WATCH_PATH
from tests.fakes.app import AUTH, TOKEN, serve
from tests.fakes.node import FakeNode

pytestmark = [pytest.mark.unit, pytest.mark.anyio]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def watch(client: httpx.AsyncClient, **params: Any) -> httpx.Response:
    return await client.get(WATCH_PATH, params=params)


async def register(client: httpx.AsyncClient, ip: str) -> dict[str, Any]:
    answer = await client.post(AGENTS_PATH, json={"ip": ip}, headers=AUTH)
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


async def parked(node: FakeNode, watchers: int) -> None:
    """Wait (with a deadline) until ``watchers`` requests are parked in the long poll."""
    async with asyncio.timeout(5):
        while node.waiting < watchers:
            await asyncio.sleep(0.001)


async def test_a_client_behind_gets_the_changes_at_once() -> None:
    node = FakeNode()
    async with serve(node) as client:
        await register(client, "10.0.0.1")
        since = node.revision
        second = await register(client, "10.0.0.2")
        answer = await watch(client, since=since, timeout=300)
        assert answer.status_code == 200
        assert answer.headers["X-Overlay-Revision"] == str(node.revision)
        body = answer.json()
        assert body["full"] is False and body["revision"] == node.revision
        assert body["agents"] == [second] and body["deleted"] == []
        assert answer.content == node.encoding.watch_bytes(node.snapshot(), since)


async def test_a_parked_watch_wakes_on_a_write() -> None:
    node = FakeNode()
    async with serve(node) as client:
        since = node.revision
        waiting = asyncio.create_task(watch(client, since=since, timeout=60))
        await parked(node, 1)
        assert not waiting.done()
        record = await register(client, "10.0.0.1")
        answer = await asyncio.wait_for(waiting, 5)
        body = answer.json()
        assert body["revision"] == since + 1 and body["full"] is False
        assert body["agents"] == [record]


async def test_a_deletion_shows_in_the_delta() -> None:
    node = FakeNode()
    async with serve(node) as client:
        await register(client, "10.0.0.1")
        await register(client, "10.0.0.2")
        since = node.revision
        deleted = await client.post(DELETE_AGENTS_PATH, json={"agents": ["10.0.0.1"]}, headers=AUTH)
        assert deleted.status_code == 200
        body = (await watch(client, since=since)).json()
        assert body["deleted"] == ["10.0.0.1"] and body["agents"] == []


async def test_nothing_new_within_the_timeout_answers_an_empty_delta_at_since() -> None:
    node = FakeNode()
    async with serve(node) as client:
        await register(client, "10.0.0.1")
        since = node.revision
        answer = await watch(client, since=since, timeout=0.05)
        assert answer.status_code == 200
        body = answer.json()
        assert body["revision"] == since and body["full"] is False
        assert body["agents"] == [] and body["deleted"] == []
        assert body["network"]["overlays"][0]["name"] == "dcos"


async def test_since_zero_or_older_than_the_change_log_gets_the_full_state() -> None:
    node = FakeNode(changes=2)
    async with serve(node) as client:
        for i in range(1, 5):
            await register(client, f"10.0.0.{i}")
        for since in (0, 1, node.revision - 3):
            body = (await watch(client, since=since)).json()
            assert body["full"] is True, since
            assert [a["ip"] for a in body["agents"]] == [f"10.0.0.{i}" for i in range(1, 5)]
        recent = (await watch(client, since=node.revision - 2)).json()
        assert recent["full"] is False and len(recent["agents"]) == 2
        default = (await watch(client)).json()  # since defaults to 0
        assert default["full"] is True


async def test_a_since_ahead_of_the_cluster_gets_the_full_state_after_a_sync() -> None:
    """A client from a wiped-and-rebuilt cluster: its revision never existed here."""
    node = FakeNode()
    async with serve(node) as client:
        await register(client, "10.0.0.1")
        answer = await watch(client, since=node.revision + 1000, timeout=300)
        body = answer.json()
        assert answer.status_code == 200 and body["full"] is True
        assert body["revision"] == node.revision and len(body["agents"]) == 1


async def test_a_since_ahead_without_quorum_is_503_with_retry_after() -> None:
    node = FakeNode()
    async with serve(node) as client:
        node.fault = "no_quorum"
        answer = await watch(client, since=node.revision + 1, timeout=300)
        assert answer.status_code == 503 and answer.json()["error"] == "unavailable"
        assert answer.headers["Retry-After"] == "1"
        assert "X-Overlay-Revision" not in answer.headers
        # a client behind still gets its answer from the local state: no quorum needed
        assert (await watch(client, since=0)).status_code == 200


async def test_no_network_config_yet_is_503() -> None:
    async with serve(FakeNode(network=None)) as client:
        answer = await watch(client, since=0, timeout=0)
        assert answer.status_code == 503 and answer.json()["error"] == "not_configured"
        assert answer.headers["Retry-After"] == "1"


async def test_other_methods_are_405_with_allow() -> None:
    async with serve(FakeNode()) as client:
        for method in ("POST", "PUT", "DELETE", "PATCH", "OPTIONS"):
            answer = await client.request(method, WATCH_PATH)
            assert answer.status_code == 405 and answer.headers["Allow"] == "GET, HEAD"
            assert answer.json()["error"] == "method_not_allowed"


@pytest.mark.parametrize(
    "params",
    [
        {"since": "abc"},
        {"since": "-1"},
        {"since": "1.5"},
        {"since": " 1"},
        {"since": "1_0"},
        {"since": "\u0663"},  # ARABIC-INDIC DIGIT THREE: int() would take it
        {"timeout": "nan"},
        {"timeout": "inf"},
        {"timeout": "-1"},
        {"timeout": "300.5"},
        {"timeout": "1e3"},
        {"timeout": ""},
    ],
)
async def test_bad_parameters_are_422(params: dict[str, str]) -> None:
    async with serve(FakeNode()) as client:
        answer = await watch(client, **params)
        assert answer.status_code == 422, params
        assert answer.json()["error"] == "invalid_request"


async def test_valid_numbers_in_json_syntax_are_accepted() -> None:
    node = FakeNode()
    async with serve(node) as client:
        for timeout in ("0", "0.01", "1e-2", "3E-3"):
            answer = await watch(client, since=node.revision, timeout=timeout)
            assert answer.status_code == 200, timeout


async def test_protect_reads_guards_the_watch() -> None:
    settings = ApiSettings(token=TOKEN, protect_reads=True)
    async with serve(FakeNode(), settings) as client:
        for headers in ({}, {"Authorization": "Bearer wrong"}):
            answer = await client.get(WATCH_PATH, headers=headers)
            assert answer.status_code == 401 and answer.json()["error"] == "unauthorized"
            assert answer.headers["WWW-Authenticate"] == "Bearer"
        assert (await client.get(WATCH_PATH, headers=AUTH)).status_code == 200
    async with serve(FakeNode()) as client:  # without protect_reads the watch is open
        assert (await client.get(WATCH_PATH)).status_code == 200


async def test_thousands_of_watchers_share_one_encoding() -> None:
    node = FakeNode()
    async with serve(node) as client:
        since = node.revision
        watchers = [asyncio.create_task(watch(client, since=since, timeout=60)) for _ in range(200)]
        await parked(node, len(watchers))
        await register(client, "10.0.0.1")
        answers = await asyncio.wait_for(asyncio.gather(*watchers), 10)
        assert len({a.content for a in answers}) == 1
        snap = node.snapshot()
        assert node.encoding.watch_bytes(snap, since) is node.encoding.watch_bytes(snap, since)
