"""What the agent reports about the containers on its bridges: host-local's lease files and
Docker's network endpoints read into containers, and the loop reporting them only on change."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest

from overlay_agent.inventory import Container, docker_endpoints, leases, merge_leases
from tests.fakes.agent import ME, World, converged
from tests.fakes.agent import fake_agent as world

pytestmark = pytest.mark.unit


def test_leases_one_container_per_id_and_interface() -> None:
    files = [
        ("9.0.0.2", "c1\r\neth0"),
        ("fd01:b::2", "c1\r\neth0\n"),  # the same container's IPv6 lease
        ("9.0.0.3", "c2\r\neth1"),
        ("9.0.0.4", "c3"),  # host-local before it recorded the interface
        ("last_reserved_ip.0", "9.0.0.4"),
        ("lock", ""),
        ("9.0.0.9", ""),  # an empty lease names no container
    ]
    assert sorted(merge_leases("dcos", files)) == [
        Container("dcos", "mesos", "c1", "eth0", "9.0.0.2", "fd01:b::2"),
        Container("dcos", "mesos", "c2", "eth1", "9.0.0.3"),
        Container("dcos", "mesos", "c3", None, "9.0.0.4"),
    ]


def test_leases_are_read_from_the_networks_directory(tmp_path: Path) -> None:
    assert leases("dcos", tmp_path / "missing") == []
    (tmp_path / "9.0.0.2").write_text("abc\r\neth0")
    (tmp_path / "lock").write_text("")
    (found,) = leases("dcos", tmp_path)
    assert found.wire() == {
        "id": "abc",
        "network": "dcos",
        "half": "mesos",
        "address": "9.0.0.2",
        "interface": "eth0",
    }


def test_docker_endpoints() -> None:
    containers = {
        "abc": {
            "Name": "web",
            "MacAddress": "02:42:09:00:00:22",
            "IPv4Address": "9.0.0.34/27",
            "IPv6Address": "",
        },
        "ep-lb": {"Name": "lb", "IPv4Address": "9.0.0.35/27"},
        "def": {"Name": "", "MacAddress": "", "IPv4Address": "", "IPv6Address": "fd01::22/81"},
    }
    assert sorted(docker_endpoints("dcos", containers)) == [
        Container("dcos", "docker", "abc", None, "9.0.0.34", None, "web", "02:42:09:00:00:22"),
        Container("dcos", "docker", "def", None, None, "fd01::22"),
    ]


async def advance_until(w: World, what: str, check: Callable[[], bool]) -> None:
    """Move the virtual clock in inventory periods until ``check`` holds (the inventory reads
    on the worker thread, so one step may not be enough)."""
    for _ in range(200):
        if check():
            return
        await w.clock.advance(0.5)
        await asyncio.sleep(0.005)
    raise AssertionError(f"never happened: {what}")


def test_the_loop_reports_containers_whole_and_only_on_change(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with world(tmp_path, cni=True) as w:
            await converged(w)
            await advance_until(w, "the first report", lambda: ME in w.master.containers)
            assert w.master.containers[ME] == []
            puts = lambda: sum(  # noqa: E731
                1 for _, method, path in w.master.requests if path.endswith("/containers")
            )
            sent = puts()
            for _ in range(4):
                await w.clock.advance(0.5)
                await asyncio.sleep(0.005)
            await converged(w)
            assert puts() == sent  # nothing changed: nothing sent
            assert w.agent.outcome is not None and w.agent.outcome.want is not None
            (mesos,) = [b for b in w.agent.outcome.want.bridges if b.name == "m-dcos"]
            address = str(mesos.gateway.ip + 1)  # what host-local hands out first
            lease_dir = tmp_path / "data" / "dcos"
            lease_dir.mkdir(parents=True)
            (lease_dir / address).write_text("c1\r\neth0")
            await advance_until(w, "the container reported", lambda: w.master.containers[ME] != [])
            assert w.master.containers[ME] == [
                {
                    "id": "c1",
                    "network": "dcos",
                    "half": "mesos",
                    "address": address,
                    "interface": "eth0",
                }
            ]
            (lease_dir / address).unlink()
            await advance_until(w, "the container gone", lambda: w.master.containers[ME] == [])

    asyncio.run(scenario())
