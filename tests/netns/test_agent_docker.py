"""The Docker half against a real ``dockerd`` running inside agent 1's namespace: the network
DC/OS's Docker step makes, idempotence, stale subnets, removal, who owns ``d-dcos``, and a Docker
container talking to a CNI container on another agent across VXLAN. Checked with the docker CLI
and ``ip``, independent of the agent's own client."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from overlay_agent.docker import BRIDGE_NAME, LABEL, MASQUERADE, MTU
from tests.harness.cluster import free_ports, running_cluster
from tests.netns import dockerd
from tests.netns.agents import AgentProcess, World
from tests.netns.dockerd import Dockerd, running_dockerd
from tests.netns.harness import LocalAgent, cluster, local_agent
from tests.netns.topology import Bed, add_container, ipj, ping_check, sh
from tests.waiting import wait_until

pytestmark = [
    pytest.mark.netns,
    pytest.mark.skipif(dockerd.available() is not None, reason=str(dockerd.available())),
]

SUBNET = "9.0.0.32/27"  # agent 1: block 9.0.0.0/26, upper half
GATEWAY = "9.0.0.33"


@dataclass
class DockerWorld:
    bed: Bed
    daemon: Dockerd
    a1: LocalAgent  # reconciles with Docker support against the daemon in its namespace
    a2: LocalAgent  # no Docker


@pytest.fixture
def world(bed: Bed) -> Iterator[DockerWorld]:
    bed.build(agents=2)
    with running_dockerd(bed, bed.agent_ns(1)) as daemon:
        a1 = local_agent(bed, 1, docker_host=daemon.host)
        a2 = local_agent(bed, 2)
        try:
            yield DockerWorld(bed, daemon, a1, a2)
        finally:
            a1.close()
            a2.close()


def bridge(ns: str, name: str = "d-dcos") -> dict[str, object] | None:
    found = [link for link in ipj(ns, "-d", "addr", "show") if link["ifname"] == name]
    return found[0] if found else None


def addresses(link: dict[str, object]) -> list[str]:
    info = link["addr_info"]
    assert isinstance(info, list)
    return [f"{a['local']}/{a['prefixlen']}" for a in info if a["family"] == "inet"]


def test_network_is_dcos_docker_step_and_a_second_pass_changes_nothing(
    world: DockerWorld,
) -> None:
    outcome = world.a1.reconcile(cluster(world.bed, (1, 2)))
    assert outcome.converged, outcome
    assert outcome.statuses["dcos"].status == "STATUS_OK"

    net = world.daemon.network("dcos")
    assert net is not None
    assert (net["Driver"], net["IPAM"]["Config"], net["Labels"]) == (
        "bridge",
        [{"Subnet": SUBNET}],
        {LABEL: "1"},
    )
    assert {k: net["Options"][k] for k in (BRIDGE_NAME, MASQUERADE, MTU)} == {
        BRIDGE_NAME: "d-dcos",
        MASQUERADE: "false",
        MTU: "1450",
    }
    # Docker made d-dcos in agent 1's namespace; the agent adopted it (tag, MTU), gateway agreed
    link = bridge(world.a1.ns)
    assert link is not None
    assert (link["ifalias"], link["mtu"], addresses(link)) == (
        "overlay-agent",
        1450,
        [f"{GATEWAY}/27"],
    )
    assert bridge(world.bed.underlay) is None and bridge(world.a2.ns) is None  # only in a1

    again = world.a1.reconcile(cluster(world.bed, (1, 2)))
    assert (again.operations, again.writes, again.converged) == (0, 0, True)
    after = world.daemon.network("dcos")
    assert after is not None and after["Id"] == net["Id"]
    restarted = local_agent(world.bed, 1, docker_host=world.daemon.host)
    try:  # a restarted agent adopts Docker's network and the bridge as they are
        fresh = restarted.reconcile(cluster(world.bed, (1, 2)))
    finally:
        restarted.close()
    assert (fresh.operations, fresh.writes, fresh.converged) == (0, 0, True)
    after = world.daemon.network("dcos")
    assert after is not None and after["Id"] == net["Id"]
    same = bridge(world.a1.ns)
    assert same is not None
    assert [same[k] for k in ("ifindex", "address", "mtu", "ifalias", "addr_info")] == [
        link[k] for k in ("ifindex", "address", "mtu", "ifalias", "addr_info")
    ]


def test_stale_subnet_is_recreated_and_a_foreign_network_is_left_alone(
    world: DockerWorld,
) -> None:
    d = world.daemon
    d.cli(
        "network",
        "create",
        "--driver=bridge",
        f"--label={LABEL}=1",
        f"--opt={BRIDGE_NAME}=d-dcos",
        f"--opt={MASQUERADE}=false",
        f"--opt={MTU}=1450",
        "--subnet=9.0.0.96/27",  # what an earlier allocation gave this agent
        "dcos",
    )
    d.cli("network", "create", f"--opt={BRIDGE_NAME}=d-other", "--subnet=10.55.0.0/24", "other")
    stale, other = d.network("dcos"), d.network("other")
    assert stale is not None and other is not None

    outcome = world.a1.reconcile(cluster(world.bed, (1, 2)))
    assert outcome.converged and outcome.statuses["dcos"].status == "STATUS_OK", outcome
    fresh = d.network("dcos")
    assert fresh is not None and fresh["Id"] != stale["Id"]
    assert fresh["IPAM"]["Config"] == [{"Subnet": SUBNET}]
    link = bridge(world.a1.ns)
    assert link is not None and addresses(link) == [f"{GATEWAY}/27"]
    assert d.network("other") == other
    foreign = bridge(world.a1.ns, "d-other")
    assert foreign is not None and "ifalias" not in foreign  # not adopted: no overlay wants it


def test_a_differing_network_without_our_label_fails_the_overlay_and_is_kept(
    world: DockerWorld,
) -> None:
    d = world.daemon
    d.cli("network", "create", f"--opt={BRIDGE_NAME}=d-dcos", "--subnet=9.0.0.96/27", "dcos")
    theirs = d.network("dcos")
    outcome = world.a1.reconcile(cluster(world.bed, (1, 2)))
    status = outcome.statuses["dcos"]
    assert status.status == "STATUS_FAILED"
    assert status.error is not None
    assert status.error.startswith("Unable to configure docker network: network dcos exists")
    assert "subnet 9.0.0.96/27 (want 9.0.0.32/27)" in status.error
    assert d.network("dcos") == theirs


def test_bridge_made_by_the_agent_is_adopted_by_docker_and_removed_once(
    world: DockerWorld,
) -> None:
    plain = local_agent(world.bed, 1)  # Docker support off: the agent makes d-dcos itself
    try:
        assert plain.reconcile(cluster(world.bed, (1, 2))).converged
    finally:
        plain.close()
    made = bridge(world.a1.ns)
    assert made is not None

    outcome = world.a1.reconcile(cluster(world.bed, (1, 2)))
    assert outcome.converged and outcome.statuses["dcos"].status == "STATUS_OK", outcome
    adopted = bridge(world.a1.ns)
    assert adopted is not None and adopted["ifindex"] == made["ifindex"]  # same link, no flap
    assert addresses(adopted) == [f"{GATEWAY}/27"]
    assert world.daemon.network("dcos") is not None

    doc = cluster(world.bed, (1, 2))
    doc["agents"][0]["overlays"] = []  # type: ignore[index]
    assert world.a1.reconcile(doc).converged
    assert world.daemon.network("dcos") is None
    assert bridge(world.a1.ns) is None  # Docker left the bridge it did not make; the agent did not


def test_network_with_a_container_is_kept_with_its_bridge_until_the_container_goes(
    world: DockerWorld,
) -> None:
    d = world.daemon
    assert world.a1.reconcile(cluster(world.bed, (1, 2))).converged
    image = d.import_busybox()
    d.cli("run", "-d", "--name", "busy", "--network", "dcos", image, "/bin/busybox", "sleep", "600")

    doc = cluster(world.bed, (1, 2))
    doc["agents"][0]["overlays"] = []  # type: ignore[index]
    world.a1.reconcile(doc)
    assert d.network("dcos") is not None  # Docker refuses: active endpoints
    assert bridge(world.a1.ns) is not None  # and the agent holds the bridge for the container

    d.cli("rm", "-f", "busy")
    assert world.a1.reconcile(doc).converged
    assert d.network("dcos") is None and bridge(world.a1.ns) is None


def test_docker_container_and_cni_container_on_another_agent_ping_over_vxlan(
    world: DockerWorld,
) -> None:
    doc = cluster(world.bed, (1, 2))
    assert world.a1.reconcile(doc).converged and world.a2.reconcile(doc).converged
    d = world.daemon
    image = d.import_busybox()
    c2 = add_container(world.bed, world.a2.ns, world.a2.conf(), "c2")  # agent 2's Mesos half
    assert c2.ip == "9.0.0.66"

    d.cli("run", "-d", "--name", "busy", "--network", "dcos", image, "/bin/busybox", "sleep", "600")
    ip = d.cli(
        "inspect", "-f", "{{.NetworkSettings.Networks.dcos.IPAddress}}", "busy"
    ).stdout.strip()
    assert ip == "9.0.0.34"  # the first container address after Docker's gateway
    mtu = d.cli("exec", "busy", "/bin/busybox", "cat", "/sys/class/net/eth0/mtu").stdout
    assert mtu.strip() == "1450"

    def docker_pings() -> bool:
        done = d.cli(
            "exec", "busy", "/bin/busybox", "ping", "-c", "1", "-W", "1", "9.0.0.66", check=False
        )
        return done.returncode == 0

    wait_until("docker container -> CNI container on agent 2", docker_pings, timeout=10)
    wait_until("CNI container on agent 2 -> docker container", ping_check(c2.ns, ip), timeout=10)
    assert sh("ip", "-n", world.a1.ns, "route", "get", "9.0.0.66").stdout.split()[2] == "44.128.0.2"


def test_unreachable_docker_fails_only_the_docker_half(bed: Bed) -> None:
    bed.build(agents=1)
    a1 = local_agent(bed, 1, docker_host=f"unix://{bed.root}/no-such-docker.sock")
    try:
        outcome = a1.reconcile(cluster(bed, (1,)))
    finally:
        a1.close()
    status = outcome.statuses["dcos"]
    assert status.status == "STATUS_FAILED" and status.error is not None
    assert status.error.startswith("Unable to configure docker network: listing networks")
    assert "cannot reach Docker" in status.error
    names = {link["ifname"] for link in ipj(a1.ns, "link", "show")}
    assert {"vtep1024", "m-dcos", "d-dcos"} <= names  # the kernel half is built all the same
    assert a1.conf().exists()


def test_agent_process_with_docker_host_and_real_masters(bed: Bed, tmp_path: Path) -> None:
    """The command line wires it: ``--docker-host`` -> network made from the masters' allocation,
    ``STATUS_OK`` reported back to them."""
    bed.build(agents=1)
    with (
        running_dockerd(bed, bed.agent_ns(1)) as daemon,
        running_cluster(tmp_path / "masters") as masters,
    ):
        (port,) = free_ports(1)
        args = [
            sys.executable,
            "-m",
            "overlay_agent.cli",
            *("--masters", ",".join(r.url for r in masters.replicas)),
            *("--ip", bed.agent_ip(1), "--netns", bed.agent_ns(1)),
            *("--token-file", str(masters.root / "token")),
            *("--cni-dir", str(tmp_path / "cni"), "--cni-data-dir", str(tmp_path / "run")),
            *("--http", f"127.0.0.1:{port}", "--resync", "1", "--watch-timeout", "5"),
            *("--docker-host", daemon.host),
        ]
        agent = AgentProcess(
            1, bed.agent_ns(1), bed.agent_ip(1), f"127.0.0.1:{port}", tmp_path, args
        )
        world = World(bed, masters, [agent])
        try:
            world.start(agent)
            world.wait_ready(agent)

            def reported() -> list[object]:
                (record,) = world.master_state()["agents"]
                return [o.get("state", {}).get("status") for o in record["overlays"]]

            wait_until("STATUS_OK on the masters", lambda: reported() == ["STATUS_OK"])
            (record,) = world.master_state()["agents"]
            upper = record["overlays"][0]["docker_bridge"]["ip"]
            net = daemon.network("dcos")
            assert net is not None and net["IPAM"]["Config"] == [{"Subnet": upper}]
            link = bridge(bed.agent_ns(1))
            assert link is not None and link["ifalias"] == "overlay-agent"
        finally:
            if agent.proc is not None:
                bed.stop(agent.proc)
