"""Live virtual networks end to end: three real master replicas, three ``overlay-agent``
processes (agent 1 with a real ``dockerd`` in its namespace when Docker is installed), containers
through the standard CNI plugins. A network added, changed, disabled and deleted through the
masters' API reaches every agent from the watch alone; networks are isolated from each other in
the kernel (same host and across hosts, both bridge halves), ``allow_from`` opens one direction,
and the agents' hosts still reach every container. Everything is checked from outside the agent:
``ip``, ``nft``, the docker CLI, files, and packets."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from ipaddress import IPv4Network
from pathlib import Path
from typing import Any

import pytest

from overlay_wire.contract import REVISION_HEADER
from tests.netns import dockerd
from tests.netns.agents import AgentProcess, World, running_world
from tests.netns.dockerd import Dockerd, running_dockerd
from tests.netns.harness import (
    bridges,
    counted,
    elements,
    expected_peer_objects,
    fdb,
    gateway,
    neighbours,
    network_routes,
    routes,
)
from tests.netns.topology import Bed, Container, add_container, ping_check, sh
from tests.waiting import wait_until

pytestmark = pytest.mark.netns

PROBE = str(Path(__file__).with_name("udp_echo.py"))
APPS = {"name": "apps", "subnet": "10.128.0.0/16", "prefix": 24}
APPS_NET = IPv4Network("10.128.0.0/16")
CONVERGE = 15.0  # seconds: a watch answer is immediate; a pass takes well under a second


@dataclass
class Live:
    world: World
    daemon: Dockerd | None  # in agent 1's namespace; None where Docker is not installed

    @property
    def agents(self) -> list[AgentProcess]:
        return self.world.agents

    @property
    def bed(self) -> Bed:
        return self.world.bed


@pytest.fixture
def live(bed: Bed, tmp_path: Path) -> Iterator[Live]:
    bed.build(agents=3)
    with contextlib.ExitStack() as stack:
        daemon = None
        if dockerd.available() is None:
            daemon = stack.enter_context(running_dockerd(bed, bed.agent_ns(1)))
        extra = {1: ["--docker-host", daemon.host]} if daemon else {}
        world = stack.enter_context(running_world(bed, tmp_path, extra=extra, build=False))
        yield Live(world, daemon)


# -- what the masters allocated, and what each agent holds of it ---------------------------------


def record(world: World, k: int, name: str) -> dict[str, Any]:
    """Agent k's allocation on network ``name``, as the masters hold it."""
    (agent,) = [a for a in world.master_state()["agents"] if a["ip"] == world.bed.agent_ip(k)]
    (overlay,) = [o for o in agent["overlays"] if o["info"]["name"] == name]
    found: dict[str, Any] = overlay
    return found


def first_host(half: str) -> str:
    net = IPv4Network(half)
    return f"{net.network_address + 1}/{net.prefixlen}"


def missing(live: Live, a: AgentProcess) -> list[str]:
    """What agent ``a`` still lacks of the apps network (nothing: all built)."""
    world = live.world
    mine = record(world, a.k, "apps")
    peers = {record(world, p.k, "apps")["subnet"] for p in live.agents if p is not a}
    sets = elements(a.ns)
    checks = {
        "bridges": {"m-apps", "d-apps"} <= bridges(a.ns),
        "m-apps address": "m-apps" in bridges(a.ns)
        and gateway(a.ns, "m-apps") == {first_host(mine["mesos_bridge"]["ip"])},
        "d-apps address": "d-apps" in bridges(a.ns)
        and gateway(a.ns, "d-apps") == {first_host(mine["docker_bridge"]["ip"])},
        "routes": network_routes(a.ns, APPS_NET) == peers,
        "CNI config": (a.cni_dir / "apps.conflist").exists(),
        "sources4": "10.128.0.0/16" in sets["sources4"],
        "overlays4": "10.128.0.0/16" in sets["overlays4"],
        "allowed4": "10.128.0.0/16 . 10.128.0.0/16" in sets["allowed4"],
        "Docker network": a.k != 1
        or live.daemon is None
        or docker_subnets(live.daemon) == [mine["docker_bridge"]["ip"]],
    }
    return [what for what, ok in checks.items() if not ok]


def leftovers(live: Live, a: AgentProcess) -> list[str]:
    """What is left on agent ``a`` of the deleted apps network (nothing: all gone)."""
    sets = elements(a.ns)
    checks = {
        "bridges": not {"m-apps", "d-apps"} & bridges(a.ns),
        "routes": not network_routes(a.ns, APPS_NET),
        "CNI config": not (a.cni_dir / "apps.conflist").exists(),
        "host-local leases": not (live.bed.root / f"a{a.k}" / "run" / "apps").exists(),
        "set members": not any("10.128." in e for members in sets.values() for e in members),
        "Docker network": a.k != 1 or live.daemon is None or live.daemon.network("apps") is None,
    }
    return [what for what, ok in checks.items() if not ok]


def settle(what: str, problems: Callable[[], list[str]]) -> None:
    last: list[str] = []

    def done() -> bool:
        last[:] = problems()
        return not last

    try:
        wait_until(what, done, timeout=CONVERGE)
    except AssertionError as e:
        raise AssertionError(f"{e}; still: {', '.join(last)}") from None


def docker_subnets(daemon: Dockerd) -> list[str] | None:
    found = daemon.network("apps")
    return None if found is None else [c["Subnet"] for c in found["IPAM"]["Config"]]


def add_apps(live: Live) -> None:
    answer = live.world.master("POST", "/overlay-master/networks", json=APPS)
    assert answer.done(201, "network_exists"), answer.response.text
    for a in live.agents:
        settle(f"agent {a.k} to build apps", lambda a=a: missing(live, a))


def patch_apps(live: Live, check: str, **fields: Any) -> None:
    answer = live.world.master("PATCH", "/overlay-master/networks/apps", json=fields)
    assert answer.status == 200, answer.response.text
    for a in live.agents:
        wait_until(
            f"agent {a.k}: {check}",
            lambda a=a: (check in elements(a.ns)["allowed4"]) == bool(fields.get("allow_from")),
            timeout=CONVERGE,
        )


def upper_half_container(live: Live, a: AgentProcess, name: str) -> Container:
    """A container on ``d-apps`` (the Docker half) through the same CNI plugins: a config like
    the agent's, over the upper half, with leases of its own."""
    listed = json.loads((a.cni_dir / "apps.conflist").read_text())
    conf = {"cniVersion": listed["cniVersion"], "name": listed["name"], **listed["plugins"][0]}
    half = record(live.world, a.k, "apps")["docker_bridge"]["ip"]
    conf["bridge"] = "d-apps"
    gateway = first_host(half).split("/")[0]
    conf["ipam"].update(
        ranges=[[{"subnet": half, "gateway": gateway}]], dataDir=str(live.bed.root / name)
    )
    path = live.bed.root / f"{name}.conf"
    path.write_text(json.dumps(conf))
    c = add_container(live.bed, a.ns, path, name)
    assert c.error is None, c.error
    return c


def reachable(pairs: list[tuple[str, str]]) -> dict[tuple[str, str], bool]:
    """One ping per (source namespace, address), all at once, one second each."""
    pings = {
        (src, dst): subprocess.Popen(
            ["ip", "netns", "exec", src, "ping", "-c", "1", "-W", "1", dst],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for src, dst in pairs
    }
    return {pair: proc.wait(timeout=10) == 0 for pair, proc in pings.items()}


def blocked(live: Live, pairs: list[tuple[Container, Container]]) -> None:
    before = sum(counted(a.ns, "forward") for a in live.agents)
    answers = reachable([(src.ns, str(dst.ip)) for src, dst in pairs])
    assert not any(answers.values()), [pair for pair, ok in answers.items() if ok]
    # dropped by the isolation rules (not lost for some other reason)
    assert sum(counted(a.ns, "forward") for a in live.agents) >= before + len(pairs)


def connected(pairs: list[tuple[str, str]]) -> None:
    for src, dst in pairs:
        wait_until(f"{src} -> {dst}", ping_check(src, dst), timeout=CONVERGE)


def serve(live: Live, ns: str, name: str) -> Path:
    log = live.bed.root / f"{name}.log"
    live.bed.start("ip", "netns", "exec", ns, sys.executable, PROBE, "serve", "7777", log=log)
    return log


def ask(ns: str, host: str, *source: str) -> str | None:
    done = sh(
        "ip", "netns", "exec", ns, sys.executable, PROBE, "ask", host, "7777", *source, check=False
    )
    return done.stdout.strip() if done.returncode == 0 else None


def answered(ns: str, host: str, *source: str) -> str:
    answers: list[str | None] = []
    wait_until(
        f"{ns} -> {host}:7777",
        lambda: answers.append(ask(ns, host, *source)) or answers[-1] is not None,
        timeout=CONVERGE,
    )
    answer = answers[-1]
    assert answer is not None
    return answer


def quiet(agents: list[AgentProcess], passes: int = 3) -> dict[int, float]:
    """Wait until every agent has made ``passes`` converged passes in a row without one write
    (isolation on); their write counts then. An agent writing on every pass never gets there."""
    converged = 'overlay_agent_reconciles_total{result="converged"}'
    samples: dict[int, list[tuple[float, float]]] = {a.k: [] for a in agents}

    def settled(a: AgentProcess) -> bool:
        mine = samples[a.k]
        mine.append((a.metric(converged), a.metric("overlay_agent_kernel_writes_total")))
        passes_now, writes_now = mine[-1]
        # writes only grow: the samples with the latest count are the last ones
        since = next(p for p, w in mine if w == writes_now)
        return passes_now - since >= passes

    wait_until(
        f"{passes} passes without a write on every agent",
        lambda: all([settled(a) for a in agents]),  # a list: sample every agent every time
        timeout=CONVERGE,
    )
    return {k: mine[-1][1] for k, mine in samples.items()}


# -- tests --------------------------------------------------------------------------------------


def test_a_network_added_at_runtime_reaches_every_agent_and_networks_are_isolated(
    live: Live,
) -> None:
    world, (a1, a2, a3) = live.world, live.agents
    add_apps(live)  # bridges, routes, CNI file, set members, Docker network on every agent
    for a in live.agents:  # one VTEP per peer, whatever the number of networks
        peers = (routes(a.ns), neighbours(a.ns), fdb(a.ns))
        expected = expected_peer_objects(live.bed, a.k, (1, 2, 3))
        assert peers[1:] == expected[1:]
        assert {
            r for r in peers[0] if IPv4Network(r[0]).subnet_of(IPv4Network("9.0.0.0/8"))
        } == expected[0]

    d1, d2 = world.container(a1, "d1"), world.container(a2, "d2")  # dcos
    p1, p2, p3 = (world.container(a, f"p{a.k}", "apps") for a in (a1, a2, a3))
    q2 = upper_half_container(live, a2, "q2")  # apps, Docker half of agent 2
    ip = {c.ns: str(c.ip) for c in (d1, d2, p1, p2, p3, q2)}

    # same network: across hosts, and on one host between the two halves
    same = [
        (d1, d2),
        (d2, d1),
        (p1, p2),
        (p2, p1),
        (p3, p1),
        (p1, q2),
        (q2, p3),
        (p2, q2),
        (q2, p2),
    ]
    connected([(s.ns, ip[t.ns]) for s, t in same])
    # hosts reach every container: the agent's own, a peer's (from its VTEP address and from its
    # underlay address), either network, either half
    connected([(a1.ns, ip[p1.ns]), (a1.ns, ip[d1.ns]), (a3.ns, ip[p1.ns]), (a3.ns, ip[q2.ns])])
    for target in (p1, d2, q2):
        done = sh(
            "ip",
            "netns",
            "exec",
            a3.ns,
            "ping",
            "-c",
            "1",
            "-W",
            "2",
            "-I",
            a3.ip,
            ip[target.ns],
            check=False,
        )
        assert done.returncode == 0, done.stdout

    # other network: blocked both ways, on one host and across hosts
    other = [(d1, p1), (p1, d1), (d2, q2), (q2, d2), (d1, p2), (p2, d1), (d2, p3), (p3, d2)]
    blocked(live, other)

    # allow_from opens dcos -> apps only; replies come back, apps -> dcos stays closed
    patch_apps(live, "9.0.0.0/8 . 10.128.0.0/16", allow_from=["dcos"])
    connected([(d1.ns, ip[p1.ns]), (d2.ns, ip[q2.ns]), (d1.ns, ip[p2.ns]), (d2.ns, ip[p3.ns])])
    blocked(live, [(p1, d1), (q2, d2), (p2, d1), (p3, d2)])

    # egress is still masqueraded; overlay to overlay keeps its source
    serve(live, live.bed.underlay, "underlay")
    p2_log = serve(live, p2.ns, "p2")
    assert answered(p1.ns, "192.0.2.1") == a1.ip
    assert answered(d1.ns, ip[p2.ns], "", "40000") == ip[d1.ns]  # a flow from a fixed port

    # taking allow_from back cuts the flow already open, not only new ones
    patch_apps(live, "9.0.0.0/8 . 10.128.0.0/16", allow_from=[])
    assert ask(d1.ns, ip[p2.ns], "", "40000") is None
    assert answered(p1.ns, ip[p2.ns]) == ip[p1.ns]

    # a container borrowing another network's address gets nowhere, nor one using an address
    # of no network (forged, or left behind on a deleted network's bridge)
    spoofed = str(IPv4Network(record(world, 1, "apps")["mesos_bridge"]["ip"]).broadcast_address - 1)
    foreign = "203.0.113.7"
    for address in (spoofed, foreign):
        sh("ip", "-n", d1.ns, "addr", "add", f"{address}/32", "dev", "eth0")
    drops = counted(a1.ns, "prerouting"), counted(a1.ns, "forward")
    assert ask(d1.ns, ip[p2.ns], spoofed) is None
    assert ask(d1.ns, ip[p2.ns], foreign) is None
    assert answered(p1.ns, ip[p2.ns]) == ip[p1.ns]  # sent after them, on the same path
    arrived = p2_log.read_text().split()
    assert spoofed not in arrived and foreign not in arrived, arrived
    assert counted(a1.ns, "prerouting") > drops[0] and counted(a1.ns, "forward") > drops[1]

    # nothing more to do: passes write nothing, isolation and all; one registration each
    quiet(live.agents)
    for a in live.agents:
        log = (live.bed.root / f"agent-{a.k}.log").read_text()
        assert log.count(": registered ") == 1, log[-3000:]


def test_a_disabled_network_stays_and_a_deleted_one_leaves_nothing(live: Live) -> None:
    world, (a1, a2, a3) = live.world, live.agents
    add_apps(live)
    p1, p2 = world.container(a1, "p1", "apps"), world.container(a2, "p2", "apps")
    d1, d3 = world.container(a1, "d1"), world.container(a3, "d3")
    connected([(p1.ns, str(p2.ip)), (d1.ns, str(d3.ip))])
    writes = quiet(live.agents)
    objects = {a.k: (bridges(a.ns), routes(a.ns), elements(a.ns)) for a in live.agents}

    answer = world.master("PATCH", "/overlay-master/networks/apps", json={"enabled": False})
    assert answer.status == 200 and answer.response.json()["enabled"] is False
    revision = int(answer.response.headers[REVISION_HEADER])
    for a in live.agents:
        wait_until(
            f"agent {a.k} on revision {revision}",
            lambda a=a: a.metric("overlay_agent_revision") >= revision,
        )
    assert quiet(live.agents) == writes
    for a in live.agents:
        assert (bridges(a.ns), routes(a.ns), elements(a.ns)) == objects[a.k]
    connected([(p1.ns, str(p2.ip))])

    refused = world.master("DELETE", "/overlay-master/networks/apps")
    assert (refused.status, refused.error) == (409, "network_in_use")
    answer = world.master("DELETE", "/overlay-master/networks/apps", params={"force": "true"})
    assert answer.done(200, "unknown_network"), answer.response.text
    for a in live.agents:
        settle(f"agent {a.k} to remove apps", lambda a=a: leftovers(live, a))
        assert {"m-dcos", "d-dcos"} <= bridges(a.ns)
        assert (routes(a.ns), neighbours(a.ns), fdb(a.ns)) == expected_peer_objects(
            live.bed, a.k, (1, 2, 3)
        )
        assert elements(a.ns)["allowed4"] == {"9.0.0.0/8 . 9.0.0.0/8"}
    connected([(d1.ns, str(d3.ip)), (d3.ns, str(d1.ip))])
    quiet(live.agents)
