"""The network API over ASGI, on a fake replica running the real allocator.

Adding, disabling, enabling and deleting networks; validation answered 422 or 409 naming field
and rule, with nothing stored; 404 for unknown networks; the watch carries every agent a new
network reached.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from overlay_wire.contract import AGENTS_PATH, NETWORKS_PATH, STATE_PATH, WATCH_PATH
from tests.fakes.app import AUTH, serve
from tests.fakes.node import FakeNode

pytestmark = [pytest.mark.unit, pytest.mark.anyio]
BLUE = {"name": "blue", "subnet": "10.10.0.0/16", "prefix": 24}


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def error(response: httpx.Response) -> tuple[int, str, str]:
    body: dict[str, Any] = response.json()
    assert set(body) == {"error", "message"}, body
    return response.status_code, body["error"], body["message"]


async def register(client: httpx.AsyncClient, ip: str, bridges: bool = True) -> None:
    body = {"ip": ip, "mesos_bridge": bridges, "docker_bridge": bridges}
    assert (await client.post(AGENTS_PATH, json=body, headers=AUTH)).status_code == 200


async def test_add_show_list_a_network_with_its_agents_and_capacity() -> None:
    node = FakeNode()
    async with serve(node) as client:
        await register(client, "10.0.0.1", bridges=False)
        await register(client, "10.0.0.2")
        added = await client.post(NETWORKS_PATH, json=BLUE, headers=AUTH)
        assert added.status_code == 201, added.text
        half = {"total": 125, "used": 0, "free": 125}  # a /25 half: 128 - network, gw, bcast
        assert added.json() == {
            "name": "blue",
            "enabled": True,
            "allow_from": [],
            "subnet": "10.10.0.0/16",
            "prefix": 24,
            "agents": [
                {"ip": "10.0.0.1", "subnet": "10.10.0.0/24", "containers": 0},
                {
                    "ip": "10.0.0.2",
                    "subnet": "10.10.1.0/24",
                    "containers": 0,
                    "mesos": half,
                    "docker": half,
                },
            ],
            "containers": 0,
            "capacity": {
                "blocks": {"total": 256, "used": 2, "free": 254},
                "mesos": half,
                "docker": half,
            },
        }
        assert added.headers["X-Overlay-Revision"] == str(node.revision)
        shown = await client.get(f"{NETWORKS_PATH}/blue")
        assert shown.json() == added.json()
        listed = (await client.get(NETWORKS_PATH)).json()
        assert [n["name"] for n in listed["networks"]] == ["dcos", "blue"]
        assert listed["revision"] == node.revision
        state = (await client.get(STATE_PATH)).json()
        blocks = {a["ip"]: [o.get("subnet") for o in a["overlays"]] for a in state["agents"]}
        assert blocks == {
            "10.0.0.1": ["9.0.0.0/26", "10.10.0.0/24"],
            "10.0.0.2": ["9.0.0.64/26", "10.10.1.0/24"],
        }


async def test_the_watch_carries_the_new_network_to_every_agent() -> None:
    node = FakeNode()
    async with serve(node) as client:
        await register(client, "10.0.0.1")
        await register(client, "10.0.0.2")
        since = node.revision
        await client.post(NETWORKS_PATH, json=BLUE, headers=AUTH)
        delta = (await client.get(WATCH_PATH, params={"since": since, "timeout": 0})).json()
        assert delta["full"] is False and delta["revision"] == since + 1
        assert sorted(a["ip"] for a in delta["agents"]) == ["10.0.0.1", "10.0.0.2"]
        assert [o["name"] for o in delta["network"]["overlays"]] == ["dcos", "blue"]


@pytest.mark.parametrize(
    ("body", "status", "reason", "words"),
    [
        ({**BLUE, "name": "averyveryverylongname"}, 422, "invalid_request", "name"),
        ({**BLUE, "name": "none"}, 422, "invalid_network", "reserved"),
        ({**BLUE, "prefix": 8}, 422, "invalid_network", "prefix"),
        ({**BLUE, "subnet": "10.10.0.0/33"}, 422, "invalid_network", "subnet"),
        ({"name": "blue"}, 422, "invalid_network", "subnet"),
        ({**BLUE, "allow_from": ["nope"]}, 422, "invalid_network", "allow_from"),
        ({**BLUE, "prefix": "24"}, 422, "invalid_request", "prefix"),
        ({**BLUE, "colour": "red"}, 422, "invalid_request", "colour"),
        ({**BLUE, "name": "dcos"}, 409, "network_exists", "already exists"),
        ({**BLUE, "subnet": "9.1.0.0/16"}, 409, "network_overlap", "overlaps overlay 'dcos'"),
        ({**BLUE, "subnet": "44.128.0.0/16"}, 409, "network_overlap", "vtep_subnet"),
    ],
)
async def test_a_bad_network_is_refused_and_nothing_is_stored(
    body: dict[str, Any], status: int, reason: str, words: str
) -> None:
    node = FakeNode()
    async with serve(node) as client:
        revision = node.revision
        answer = await client.post(NETWORKS_PATH, json=body, headers=AUTH)
        got_status, got_reason, message = error(answer)
        assert (got_status, got_reason) == (status, reason), message
        assert words in message
        assert node.revision == revision
        assert node.state.network is not None and node.state.network.names == ("dcos",)


async def test_disable_enable_and_allow_from() -> None:
    node = FakeNode()
    async with serve(node) as client:
        await client.post(NETWORKS_PATH, json=BLUE, headers=AUTH)
        off = await client.patch(f"{NETWORKS_PATH}/blue", json={"enabled": False}, headers=AUTH)
        assert off.status_code == 200 and off.json()["enabled"] is False
        await register(client, "10.0.0.1")
        assert (await client.get(f"{NETWORKS_PATH}/blue")).json()["agents"] == []
        on = await client.patch(f"{NETWORKS_PATH}/blue", json={"enabled": True}, headers=AUTH)
        assert [a["ip"] for a in on.json()["agents"]] == ["10.0.0.1"]
        allow = await client.patch(
            f"{NETWORKS_PATH}/blue", json={"allow_from": ["dcos"]}, headers=AUTH
        )
        assert allow.json()["allow_from"] == ["dcos"]
        network = (await client.get(STATE_PATH)).json()["network"]
        assert network["overlays"][1]["allow_from"] == ["dcos"]
        bad = await client.patch(
            f"{NETWORKS_PATH}/blue", json={"allow_from": ["blue"]}, headers=AUTH
        )
        assert error(bad)[:2] == (422, "invalid_network")
        unknown = await client.patch(f"{NETWORKS_PATH}/red", json={"enabled": True}, headers=AUTH)
        assert error(unknown)[:2] == (404, "unknown_network")


async def test_delete_is_refused_while_in_use_unless_forced() -> None:
    node = FakeNode()
    async with serve(node) as client:
        await register(client, "10.0.0.1")
        await client.post(NETWORKS_PATH, json=BLUE, headers=AUTH)
        refused = await client.delete(f"{NETWORKS_PATH}/blue", headers=AUTH)
        assert error(refused)[:2] == (409, "network_in_use")
        assert "10.0.0.1" in error(refused)[2]
        forced = await client.delete(
            f"{NETWORKS_PATH}/blue", params={"force": "true"}, headers=AUTH
        )
        assert forced.status_code == 200
        assert forced.json() == {"name": "blue", "revision": node.revision, "agents": ["10.0.0.1"]}
        assert error(await client.get(f"{NETWORKS_PATH}/blue"))[:2] == (404, "unknown_network")
        again = await client.delete(f"{NETWORKS_PATH}/blue", headers=AUTH)
        assert error(again)[:2] == (404, "unknown_network")


async def test_network_writes_need_the_token_and_are_503_without_quorum() -> None:
    node = FakeNode()
    async with serve(node) as client:
        for answer in (
            await client.post(NETWORKS_PATH, json=BLUE),
            await client.patch(f"{NETWORKS_PATH}/dcos", json={"enabled": False}),
            await client.delete(f"{NETWORKS_PATH}/dcos"),
        ):
            assert error(answer)[:2] == (401, "unauthorized")
        node.fault = "no_quorum"
        answer = await client.post(NETWORKS_PATH, json=BLUE, headers=AUTH)
        assert error(answer)[:2] == (503, "unavailable")
        assert answer.headers["Retry-After"] == "1"
        assert error(await client.get(NETWORKS_PATH))[:2] == (503, "unavailable")
        assert (await client.get(NETWORKS_PATH, params={"consistent": "false"})).status_code == 200
