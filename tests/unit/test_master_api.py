"""The master's HTTP routes over ASGI, on a fake replica running the real allocator.

Every route's answer and error path: 401 (token, with and without protect_reads), 422 (bad IP,
bad body, bad JSON), 409 (exhaustion), 404 (unknown agent or path), 405 with Allow, and 503 with
Retry-After when the log has no quorum or does not answer.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from overlay_master import dcos_json
from overlay_master.http_edge import ApiSettings
from overlay_wire.contract import AGENTS_PATH, DELETE_AGENTS_PATH, LEADER_PATH, STATE_PATH
from tests.fakes.app import AUTH, TOKEN, serve
from tests.fakes.node import DEFAULT_NETWORK, FakeNode

pytestmark = [pytest.mark.unit, pytest.mark.anyio]
TINY = {**DEFAULT_NETWORK, "vtep_subnet": "44.128.0.0/30"}  # two VTEP addresses


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def record_bytes(node: FakeNode, ip: str) -> bytes:
    assert node.state.network is not None
    return dcos_json.dumps(dcos_json.agent_json(node.state.agents[ip], node.state.network))


def error(response: httpx.Response) -> str:
    body: dict[str, Any] = response.json()
    assert set(body) == {"error", "message"} and body["message"], body
    return str(body["error"])


async def register(client: httpx.AsyncClient, ip: str, **extra: Any) -> httpx.Response:
    return await client.post(AGENTS_PATH, json={"ip": ip, **extra}, headers=AUTH)


async def test_register_answers_the_record_and_is_idempotent() -> None:
    node = FakeNode()
    async with serve(node) as client:
        first = await register(client, "10.0.0.1")
        assert first.status_code == 200 and first.content == record_bytes(node, "10.0.0.1")
        assert first.headers["X-Overlay-Revision"] == str(node.revision)
        again = await register(client, "10.0.0.1")
        assert again.content == first.content
        bare = await register(client, "10.0.0.2", mesos_bridge=False, docker_bridge=False)
        assert "mesos_bridge" not in bare.json()["overlays"][0]
        fetched = await client.get(f"{AGENTS_PATH}/10.0.0.1")
        assert fetched.status_code == 200 and fetched.content == first.content
        state = await client.get(STATE_PATH)
        assert state.content == node.encoding.state_bytes(node.snapshot())
        assert [a["ip"] for a in state.json()["agents"]] == ["10.0.0.1", "10.0.0.2"]


async def test_status_report_and_delete() -> None:
    node = FakeNode()
    async with serve(node) as client:
        await register(client, "10.0.0.1")
        await register(client, "10.0.0.2")
        report = {"overlays": [{"name": "dcos", "status": "STATUS_FAILED", "error": "no bridge"}]}
        answer = await client.put(f"{AGENTS_PATH}/10.0.0.1/status", json=report, headers=AUTH)
        assert answer.status_code == 200
        state = answer.json()["overlays"][0]["state"]
        assert state == {"status": "STATUS_FAILED", "error": "no bridge"}
        deleted = await client.post(DELETE_AGENTS_PATH, json={"agents": ["10.0.0.1"]}, headers=AUTH)
        assert deleted.status_code == 200
        assert [a["ip"] for a in deleted.json()["agents"]] == ["10.0.0.2"]
        assert deleted.headers["X-Overlay-Revision"] == str(node.revision)
        assert "10.0.0.1" not in node.state.agents


async def test_writes_need_the_token() -> None:
    node = FakeNode()
    async with serve(node) as client:
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {TOKEN}"}):
            answer = await client.post(AGENTS_PATH, json={"ip": "10.0.0.1"}, headers=headers)
            assert answer.status_code == 401 and error(answer) == "unauthorized"
            assert answer.headers["WWW-Authenticate"] == "Bearer"
        status = await client.put(f"{AGENTS_PATH}/10.0.0.1/status", json={"overlays": []})
        delete = await client.post(DELETE_AGENTS_PATH, json={"agents": []})
        assert status.status_code == delete.status_code == 401
        assert node.state.agents == {}
        assert (await client.get(STATE_PATH)).status_code == 200  # reads stay open
        assert (await register(client, "10.0.0.1")).status_code == 200


async def test_protect_reads_guards_reads_too() -> None:
    settings = ApiSettings(token=TOKEN, protect_reads=True)
    async with serve(FakeNode(), settings) as client:
        for path in (STATE_PATH, f"{AGENTS_PATH}/10.0.0.1"):
            answer = await client.get(path)
            assert answer.status_code == 401 and error(answer) == "unauthorized"
        await register(client, "10.0.0.1")
        assert (await client.get(STATE_PATH, headers=AUTH)).status_code == 200
        assert (await client.get(f"{AGENTS_PATH}/10.0.0.1", headers=AUTH)).status_code == 200
        for path in ("/healthz", "/readyz", LEADER_PATH, "/metrics"):
            assert (await client.get(path)).status_code == 200, path


async def test_without_a_token_nothing_is_guarded() -> None:
    async with serve(FakeNode(), ApiSettings(token=None)) as client:
        answer = await client.post(AGENTS_PATH, json={"ip": "10.0.0.1"})
        assert answer.status_code == 200


async def test_bad_ip_bad_body_and_bad_json_are_422() -> None:
    node = FakeNode()
    async with serve(node) as client:
        for ip in ("10.0.0.300", "fd00::1", "010.0.0.1", "", "ten"):
            answer = await register(client, ip)
            assert answer.status_code == 422 and error(answer) == "invalid_ip", ip
        for bad in (
            {},
            {"ip": 5},
            {"ip": "10.0.0.1", "extra": 1},
            {"ip": "10.0.0.1", "mesos_bridge": "true"},
            {"ip": "10.0.0.1", "docker_bridge": 1},
            [],
        ):
            answer = await client.post(AGENTS_PATH, json=bad, headers=AUTH)
            assert answer.status_code == 422 and error(answer) == "invalid_request", bad
        for raw in (b'{"ip": "10.0.0.1"', b'{"ip": "\xff"}', b"[" * 100_000):
            answer = await client.post(
                AGENTS_PATH, content=raw, headers={**AUTH, "Content-Type": "application/json"}
            )
            assert answer.status_code == 422 and error(answer) == "invalid_request"
            assert "not valid JSON" in answer.json()["message"]
        path = await client.get(f"{AGENTS_PATH}/10.0.0.300")
        assert path.status_code == 422 and error(path) == "invalid_ip"
        bad_delete = await client.post(
            DELETE_AGENTS_PATH, json={"agents": ["10.0.0.1", "nope"]}, headers=AUTH
        )
        assert bad_delete.status_code == 422 and error(bad_delete) == "invalid_ip"
        bad_status = await client.put(
            f"{AGENTS_PATH}/10.0.0.1/status",
            json={"overlays": [{"name": "dcos", "status": "STATUS_GREAT"}]},
            headers=AUTH,
        )
        assert bad_status.status_code == 422 and error(bad_status) == "invalid_request"
        consistent = await client.get(STATE_PATH, params={"consistent": "maybe"})
        assert consistent.status_code == 422 and "consistent" in consistent.json()["message"]
        assert node.state.agents == {}


async def test_exhaustion_is_409() -> None:
    node = FakeNode(TINY)
    async with serve(node) as client:
        assert (await register(client, "10.0.0.1")).status_code == 200
        assert (await register(client, "10.0.0.2")).status_code == 200
        full = await register(client, "10.0.0.3")
        assert full.status_code == 409 and error(full) == "vtep_exhausted"
        assert "10.0.0.3" not in node.state.agents


async def test_unknown_agent_and_path_are_404_unknown_overlay_409() -> None:
    async with serve(FakeNode()) as client:
        missing = await client.get(f"{AGENTS_PATH}/10.9.9.9")
        assert missing.status_code == 404 and error(missing) == "unknown_agent"
        report = {"overlays": [{"name": "dcos", "status": "STATUS_OK"}]}
        unknown = await client.put(f"{AGENTS_PATH}/10.9.9.9/status", json=report, headers=AUTH)
        assert unknown.status_code == 404 and error(unknown) == "unknown_agent"
        await register(client, "10.0.0.1")
        report = {"overlays": [{"name": "other", "status": "STATUS_OK"}]}
        overlay = await client.put(f"{AGENTS_PATH}/10.0.0.1/status", json=report, headers=AUTH)
        assert overlay.status_code == 409 and error(overlay) == "unknown_overlay"
        nowhere = await client.get("/overlay-master/nowhere")
        assert nowhere.status_code == 404 and error(nowhere) == "not_found"


async def test_wrong_methods_are_405_with_allow() -> None:
    async with serve(FakeNode()) as client:
        for method, path, allowed in (
            ("DELETE", AGENTS_PATH, "POST"),
            ("POST", STATE_PATH, "GET"),
            ("GET", DELETE_AGENTS_PATH, "POST"),  # not the agent "delete"
            ("PUT", DELETE_AGENTS_PATH, "POST"),
            ("GET", f"{AGENTS_PATH}/10.0.0.1/status", "PUT"),
            ("PATCH", f"{AGENTS_PATH}/10.0.0.1", "GET"),
            ("POST", "/metrics", "GET"),
        ):
            answer = await client.request(method, path, headers=AUTH)
            assert answer.status_code == 405, (method, path)
            assert error(answer) == "method_not_allowed"
            assert answer.headers["Allow"] == allowed, (method, path)


async def test_no_quorum_is_503_with_retry_after_and_changes_nothing() -> None:
    node = FakeNode()
    async with serve(node) as client:
        await register(client, "10.0.0.1")
        node.fault = "no_quorum"
        report = {"overlays": [{"name": "dcos", "status": "STATUS_OK"}]}
        for answer in (
            await register(client, "10.0.0.2"),
            await client.put(f"{AGENTS_PATH}/10.0.0.1/status", json=report, headers=AUTH),
            await client.post(DELETE_AGENTS_PATH, json={"agents": ["10.0.0.1"]}, headers=AUTH),
            await client.get(STATE_PATH),
            await client.get(f"{AGENTS_PATH}/10.0.0.1"),
        ):
            assert answer.status_code == 503 and error(answer) == "unavailable"
            assert answer.headers["Retry-After"] == "1"
            assert "Retry the same request" in answer.json()["message"]
        assert list(node.state.agents) == ["10.0.0.1"]
        local = await client.get(STATE_PATH, params={"consistent": "false"})
        assert local.status_code == 200 and len(local.json()["agents"]) == 1
        ready = await client.get("/readyz")
        assert ready.status_code == 503 and ready.json()["ready"] is False
        leader = (await client.get(LEADER_PATH)).json()
        assert leader == {"leader": None, "self": node.self_address, "role": "follower"}


async def test_a_log_that_never_answers_is_503_after_the_timeout() -> None:
    node = FakeNode()
    node.fault = "timeout"
    settings = ApiSettings(token=TOKEN, write_timeout=0.05, read_timeout=0.05)
    async with serve(node, settings) as client:
        write = await register(client, "10.0.0.1")
        read = await client.get(STATE_PATH)
        for answer in (write, read):
            assert answer.status_code == 503 and error(answer) == "unavailable"
            assert answer.headers["Retry-After"] == "1"


async def test_no_network_config_yet_is_503_not_configured() -> None:
    async with serve(FakeNode(network=None)) as client:
        for answer in (await client.get(STATE_PATH), await register(client, "10.0.0.1")):
            assert answer.status_code == 503 and error(answer) == "not_configured"
            assert answer.headers["Retry-After"] == "1"
        ready = await client.get("/readyz")
        assert ready.json() == {
            "ready": False,
            "reason": "no network config committed yet",
            "config_drift": [],
        }


async def test_probes_leader_and_metrics() -> None:
    node = FakeNode()
    async with serve(node) as client:
        await register(client, "10.0.0.1")
        assert (await client.get("/healthz")).json() == {"alive": True}
        assert (await client.get("/readyz")).json() == {
            "ready": True,
            "reason": "ready",
            "config_drift": [],
        }
        leader = (await client.get(LEADER_PATH)).json()
        assert leader == {"leader": node.self_address, "self": node.self_address, "role": "leader"}
        metrics = await client.get("/metrics")
        assert metrics.headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
        lines = metrics.text.splitlines()
        assert "overlay_master_agents 1.0" in lines
        assert 'overlay_master_raft_role{role="leader"} 1.0' in lines
        assert 'overlay_master_blocks_used{family="ipv4",overlay="dcos"} 1.0' in lines
        assert f"overlay_master_revision {float(node.revision)}" in lines


async def test_openapi_declares_every_answer() -> None:
    async with serve(FakeNode(), ApiSettings(token=TOKEN, protect_reads=False)) as client:
        document = (await client.get("/openapi.json")).json()
    paths = document["paths"]
    watch = paths["/overlay-master/watch"]["get"]
    assert {p["name"] for p in watch["parameters"]} == {"since", "timeout", "include"}
    assert watch["responses"]["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/WatchDoc"
    }
    register_op = paths[AGENTS_PATH]["post"]
    assert set(register_op["responses"]) == {"200", "401", "405", "409", "422", "500", "503"}
    assert register_op["security"] == [{"bearer": []}]
    assert "security" not in paths[STATE_PATH]["get"]  # reads are open without protect_reads
    assert "401" not in paths[STATE_PATH]["get"]["responses"]
    for path, operations in paths.items():
        for method, operation in operations.items():
            allow = operation["responses"]["405"]["headers"]["Allow"]
            assert allow["required"] is True, (method, path)
    ip = paths[f"{AGENTS_PATH}/{{ip}}"]["get"]["parameters"][0]
    assert ip["in"] == "path" and ip["schema"]["format"] == "ipv4"
    schemas = document["components"]["schemas"]
    assert schemas["RegisterAgent"]["properties"]["ip"]["format"] == "ipv4"
    assert schemas["DeleteAgents"]["properties"]["agents"]["items"]["format"] == "ipv4"
    assert schemas["AgentDoc"]["required"] == ["ip", "overlays"]
    assert "HTTPValidationError" not in schemas
    metrics = paths["/metrics"]["get"]["responses"]["200"]["content"]
    assert list(metrics) == ["text/plain; version=0.0.4; charset=utf-8"]
    json.dumps(document)  # serialisable as served
