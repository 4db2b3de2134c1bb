"""Dual stack on real kernels: three agent namespaces fed a dual-stack cluster state (``DCOS6``:
9.0.0.0/8 in /26 blocks and fd01:b::/64 in /80 blocks, VTEPs 44.128.0.n and fd01:a::n). IPv6
ping and TCP between containers of both halves (CNI containers through the agent's configuration
list, a Docker container from a real dockerd) across agents; IPv4 and IPv6 objects removed when an
agent is deleted, and what one added back costs; IPv6 drift repaired. Checked with ``ip``,
``bridge`` and the containers themselves, independent of the agent's code."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from tests import statedoc
from tests.netns import dockerd
from tests.netns.dockerd import running_dockerd
from tests.netns.harness import LocalAgent, fdb, local_agent, local_agents, neighbours
from tests.netns.topology import Bed, add_container, ipj, ping_check, sh
from tests.waiting import wait_until

pytestmark = pytest.mark.netns

DUAL = [statedoc.DCOS6]


def dual_cluster(bed: Bed, ks: tuple[int, ...] = (1, 2, 3)) -> dict[str, Any]:
    return statedoc.state([statedoc.record(bed.agent_ip(k), k, DUAL) for k in ks], DUAL)


def block6(k: int) -> str:
    return str(statedoc.block6("fd01:b::/64", 80, k - 1))


def routes6(ns: str) -> set[tuple[str, str]]:
    return {
        (r["dst"], r.get("gateway", "")) for r in ipj(ns, "-6", "route", "show", "proto", "211")
    }


def expected6(me: int, peers: tuple[int, ...]) -> set[tuple[str, str]]:
    return {(block6(k), str(statedoc.vtep_ip6(k))) for k in peers if k != me}


def global6(ns: str, dev: str) -> list[tuple[str, int, bool]]:
    """(address, prefix length, nodad) of the device's global IPv6 addresses."""
    (link,) = ipj(ns, "-6", "addr", "show", "dev", dev)
    return [
        (a["local"], a["prefixlen"], bool(a.get("nodad")))
        for a in link["addr_info"]
        if a and a["scope"] == "global"
    ]


def sysctl(ns: str, name: str) -> str:
    return sh("ip", "netns", "exec", ns, "sysctl", "-n", name).stdout.strip()


@pytest.fixture
def trio(bed: Bed) -> Iterator[list[LocalAgent]]:
    with local_agents(bed) as agents:
        for a in agents:
            outcome = a.reconcile(dual_cluster(bed))
            assert outcome.converged, outcome
        yield agents


def test_kernel_objects_of_both_families(bed: Bed, trio: list[LocalAgent]) -> None:
    a1 = trio[0].ns
    assert global6(a1, "vtep1024") == [("fd01:a::1", 64, True)]
    assert global6(a1, "m-dcos") == [("fd01:b::1", 81, True)]
    assert global6(a1, "d-dcos") == [("fd01:b::8000:0:1", 81, True)]
    assert sysctl(a1, "net.ipv6.conf.all.forwarding") == "1"
    for a in trio:
        others = tuple(k for k in (1, 2, 3) if k != a.k)
        assert routes6(a.ns) == expected6(a.k, others)
        assert neighbours(a.ns) == {
            (ip, statedoc.vtep_mac(k))
            for k in others
            for ip in (str(statedoc.vtep_ip(k)), str(statedoc.vtep_ip6(k)))
        }
        assert fdb(a.ns) == {(statedoc.vtep_mac(k), bed.agent_ip(k)) for k in others}
    conf = json.loads(trio[0].conf().read_text())
    assert conf["plugins"][0]["ipam"]["ranges"] == [
        [{"subnet": "9.0.0.0/27", "gateway": "9.0.0.1"}],
        [{"subnet": "fd01:b::/81", "gateway": "fd01:b::1"}],
    ]


@pytest.mark.skipif(dockerd.available() is not None, reason=str(dockerd.available()))
def test_ipv6_ping_and_tcp_between_both_halves_across_agents(bed: Bed) -> None:
    bed.build(agents=3)
    with running_dockerd(bed, bed.agent_ns(2)) as daemon:
        agents = [
            local_agent(bed, k, docker_host=daemon.host if k == 2 else None) for k in (1, 2, 3)
        ]
        try:
            for a in agents:
                outcome = a.reconcile(dual_cluster(bed))
                assert outcome.converged, outcome
            net = daemon.network("dcos")
            assert net is not None and net["EnableIPv6"] is True
            assert {c["Subnet"] for c in net["IPAM"]["Config"]} == {
                "9.0.0.96/27",
                "fd01:b::1:8000:0:0/81",
            }
            image = daemon.import_busybox()
            daemon.cli(
                *("run", "-d", "--name", "web", "--network", "dcos", "--stop-timeout", "1"),
                *(image, "/bin/busybox", "httpd", "-f", "-p", "80", "-h", "/bin"),
            )
            web = daemon.cli(
                "inspect", "-f", "{{.NetworkSettings.Networks.dcos.GlobalIPv6Address}}", "web"
            ).stdout.strip()
            assert web == "fd01:b::1:8000:0:2"
            c1 = add_container(bed, agents[0].ns, agents[0].conf(), "c1")  # Mesos half, agent 1
            c3 = add_container(bed, agents[2].ns, agents[2].conf(), "c3")  # Mesos half, agent 3
            assert (c1.ip6, c3.ip6) == ("fd01:b::2", "fd01:b::2:0:0:2")
            assert c1.ip6 is not None and c3.ip6 is not None

            # ping6: Mesos -> Mesos, Mesos -> Docker, Docker -> Mesos, each across VXLAN
            wait_until("c1 -> c3 (IPv6)", ping_check(c1.ns, c3.ip6), timeout=10)
            wait_until("c1 -> docker (IPv6)", ping_check(c1.ns, web), timeout=10)

            def docker_pings() -> bool:
                ping = ("/bin/busybox", "ping", "-6", "-c", "1", "-W", "1", c3.ip6)
                return daemon.cli("exec", "web", *ping, check=False).returncode == 0

            wait_until("docker -> c3 (IPv6)", docker_pings, timeout=10)

            # TCP over IPv6: Mesos -> Docker (busybox httpd) and Docker -> Mesos (python)
            fetched = sh(
                *("ip", "netns", "exec", c1.ns, "python3", "-c"),
                "import urllib.request, sys; "
                "print(urllib.request.urlopen(sys.argv[1], timeout=5).status)",
                f"http://[{web}]/busybox",
            )
            assert fetched.stdout.strip() == "200"
            www = bed.root / "www"
            www.mkdir()
            (www / "hello").write_text("over ipv6\n")
            bed.start(
                *("ip", "netns", "exec", c3.ns, "python3", "-m", "http.server"),
                *("--bind", "::", "--directory", str(www), "8080"),
                log=bed.root / "http.log",
            )

            def docker_fetches() -> bool:
                get = ("/bin/busybox", "wget", "-q", "-O", "-", f"http://[{c3.ip6}]:8080/hello")
                done = daemon.cli("exec", "web", *get, check=False)
                return done.returncode == 0 and done.stdout == "over ipv6\n"

            wait_until("docker -> c3 over TCP/IPv6", docker_fetches, timeout=10)
            # the IPv6 traffic crossed agent 1's VTEP: the route is ours, via agent 2's VTEP
            route = sh("ip", "-n", agents[0].ns, "-6", "route", "get", web).stdout.split()
            assert route[route.index("via") + 1] == "fd01:a::2" and "vtep1024" in route
        finally:
            for a in agents:
                a.close()


def test_deleted_agent_loses_both_families_and_coming_back_costs_five_writes(
    bed: Bed, trio: list[LocalAgent]
) -> None:
    without_3 = dual_cluster(bed, (1, 2))
    for a in trio[:2]:
        outcome = a.reconcile(without_3)
        # route and neighbour per family, the one FDB entry
        assert (outcome.operations, outcome.converged) == (5, True)
        other = 3 - a.k
        assert routes6(a.ns) == expected6(a.k, (other,))
        assert {r["dst"] for r in ipj(a.ns, "route", "show", "proto", "211")} == {
            str(statedoc.block("9.0.0.0/8", 26, other - 1))
        }
        assert neighbours(a.ns) == {
            (str(statedoc.vtep_ip(other)), statedoc.vtep_mac(other)),
            (str(statedoc.vtep_ip6(other)), statedoc.vtep_mac(other)),
        }
        assert fdb(a.ns) == {(statedoc.vtep_mac(other), bed.agent_ip(other))}
    back = trio[0].reconcile(dual_cluster(bed))
    assert (back.operations, back.writes, back.converged) == (5, 5, True)


def test_ipv6_drift_is_repaired(bed: Bed, trio: list[LocalAgent]) -> None:
    a1 = trio[0]
    sh("ip", "-n", a1.ns, "-6", "route", "del", block6(3))
    sh("ip", "-n", a1.ns, "-6", "neigh", "del", "fd01:a::2", "dev", "vtep1024")
    sh("ip", "-n", a1.ns, "-6", "addr", "flush", "dev", "m-dcos", "scope", "global")
    sh("ip", "-n", a1.ns, "addr", "add", "fd01:99::1/64", "dev", "d-dcos", "nodad")
    sh("ip", "netns", "exec", a1.ns, "sysctl", "-q", "-w", "net.ipv6.conf.all.forwarding=0")
    outcome = a1.reconcile(dual_cluster(bed))
    assert (outcome.operations, outcome.converged) == (5, True)
    assert routes6(a1.ns) == expected6(1, (2, 3))
    assert ("fd01:a::2", statedoc.vtep_mac(2)) in neighbours(a1.ns)
    assert global6(a1.ns, "m-dcos") == [("fd01:b::1", 81, True)]
    assert global6(a1.ns, "d-dcos") == [("fd01:b::8000:0:1", 81, True)]
    assert sysctl(a1.ns, "net.ipv6.conf.all.forwarding") == "1"
    again = a1.reconcile(dual_cluster(bed))
    assert (again.operations, again.writes) == (0, 0)
