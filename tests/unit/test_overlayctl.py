"""overlayctl against the master's real HTTP app (fake replica, real allocator), in-process."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from overlay_ctl import cli
from overlay_master.api import create_app
from overlay_master.http_edge import ApiSettings
from tests.fakes.app import TOKEN
from tests.fakes.node import FakeNode

pytestmark = [pytest.mark.unit, pytest.mark.anyio]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def ctl(node: FakeNode, *argv: str, **env: Any) -> tuple[int, str]:
    """Run one overlayctl command against ``node``; its exit status and what it printed."""
    app = create_app(node, ApiSettings(token=TOKEN))
    printed: list[str] = []
    args = cli.parser().parse_args(["--masters", "http://m1,http://m2", "--timeout", "2", *argv])
    async with app.router.lifespan_context(app):
        code = await cli.run(args, printed.append, httpx.ASGITransport(app=app))
    return code, "\n".join(printed)


@pytest.fixture(autouse=True)
def token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OVERLAY_TOKEN", TOKEN)


async def test_network_lifecycle_in_tables() -> None:
    node = FakeNode()
    node.apply({"op": "register", "ip": "10.0.0.1", "mesos_bridge": True, "docker_bridge": True})
    code, out = await ctl(
        node,
        "network",
        "add",
        "blue",
        "--subnet",
        "10.10.0.0/16",
        "--prefix",
        "24",
        "--allow-from",
        "dcos",
    )
    assert code == 0, out
    assert "network     blue" in out and "10.10.0.0/16 /24" in out and "allow from  dcos" in out
    code, out = await ctl(node, "network", "list")
    lines = out.splitlines()
    assert lines[0].split() == [
        "NAME",
        "ADDRESSES",
        "(/BLOCK)",
        "ENABLED",
        "ALLOW",
        "FROM",
        "AGENTS",
        "BLOCKS",
        "USED",
    ]
    assert lines[2].split()[:4] == ["blue", "10.10.0.0/16", "/24", "yes"]
    assert lines[2].split()[-1] == "1/256"
    code, out = await ctl(node, "network", "disable", "blue")
    assert code == 0 and "enabled     no" in out
    code, out = await ctl(node, "--json", "network", "show", "blue")
    assert json.loads(out)["enabled"] is False
    code, out = await ctl(node, "network", "delete", "blue")
    assert code == cli.EXIT_REFUSED
    code, out = await ctl(node, "network", "delete", "blue", "--force")
    assert code == 0 and out.startswith("deleted network blue")
    assert node.state.network is not None and node.state.network.names == ("dcos",)


async def test_agents_in_tables() -> None:
    node = FakeNode()
    node.apply({"op": "register", "ip": "10.0.0.1", "mesos_bridge": True, "docker_bridge": True})
    code, out = await ctl(node, "agent", "list")
    assert code == 0
    assert out.splitlines()[1].split()[:4] == [
        "10.0.0.1",
        "44.128.0.1/20",
        "70:b3:d5:80:00:01",
        "dcos=9.0.0.0/26",
    ]
    code, out = await ctl(node, "agent", "show", "10.0.0.1")
    assert "dcos     9.0.0.0/26" in out and "9.0.0.32/27" in out
    code, out = await ctl(node, "agent", "delete", "10.0.0.1")
    assert code == 0 and node.state.agents == {}


async def test_refusals_and_an_unreachable_cluster(capsys: pytest.CaptureFixture[str]) -> None:
    node = FakeNode()
    code, _ = await ctl(node, "network", "show", "nope")
    assert code == cli.EXIT_REFUSED
    assert "404 unknown_network" in capsys.readouterr().err
    code, _ = await ctl(node, "network", "add", "x", "--subnet", "9.1.0.0/16", "--prefix", "24")
    assert code == cli.EXIT_REFUSED and "409 network_overlap" in capsys.readouterr().err
    node.fault = "no_quorum"
    code, _ = await ctl(node, "network", "add", "x", "--subnet", "10.1.0.0/16", "--prefix", "24")
    assert code == cli.EXIT_UNREACHABLE
    assert "no master answered in time" in capsys.readouterr().err


async def test_containers_and_status_in_one_screen() -> None:
    node = FakeNode()
    node.apply({"op": "register", "ip": "10.0.0.1", "mesos_bridge": True, "docker_bridge": True})
    full = [
        {"id": f"c{i}", "network": "dcos", "half": "mesos", "address": f"9.0.0.{i + 2}"}
        for i in range(27)  # 27 of the /27 half's 29 addresses: nearly full
    ]
    node.apply({"op": "containers", "ip": "10.0.0.1", "containers": full})
    code, out = await ctl(node, "containers", "--network", "dcos")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == [
        "CONTAINER",
        "NAME",
        "NETWORK",
        "AGENT",
        "HALF",
        "ADDRESS",
        "ADDRESS6",
    ]
    assert len(lines) == 28 and lines[1].split()[:5] == ["c0", "-", "dcos", "10.0.0.1", "mesos"]
    code, out = await ctl(node, "containers", "--agent", "10.0.0.9")
    assert out.splitlines()[1] == "(none)"
    code, out = await ctl(node, "status")
    assert code == 0, out
    assert "127.0.0.1:7001" in out and "leader 127.0.0.1:7001" in out
    assert "warning: dcos on 10.0.0.1: mesos half 27/29 addresses used" in out
    assert "1 agent(s); overlays: 1 no report yet" in out
    code, out = await ctl(node, "--json", "status")
    assert set(json.loads(out)) == {"cluster", "networks", "state"}
