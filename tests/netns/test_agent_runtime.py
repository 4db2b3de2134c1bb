"""A container runtime that reads CNI configuration lists (podman from Debian) finds the agent's
network in the agent's own CNI directory, as a new user would try it: containers on two agents
reach each other across VXLAN (IPv4 and IPv6), a published port reaches a container from its
agent's underlay address (the list's portmap plugin), and stopping the containers releases their
host-local leases and their port mapping."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests import statedoc
from tests.netns import podman
from tests.netns.harness import LocalAgent, local_agents
from tests.netns.podman import IMAGE, PAGE, podman_in
from tests.netns.topology import Bed, sh
from tests.waiting import wait_until

pytestmark = [
    pytest.mark.netns,
    pytest.mark.skipif(podman.available() is not None, reason=str(podman.available())),
]

DUAL = [statedoc.DCOS6]


@pytest.fixture
def duo(bed: Bed) -> Iterator[list[LocalAgent]]:
    with local_agents(bed, count=2) as agents:
        doc = statedoc.state([statedoc.record(bed.agent_ip(k), k, DUAL) for k in (1, 2)], DUAL)
        for a in agents:
            assert a.reconcile(doc).converged
        yield agents


def leases(agent: LocalAgent) -> set[str]:
    folder = agent.data_dir / "dcos"
    return {p.name for p in folder.iterdir() if p.name[0].isdigit() or ":" in p.name}


def test_podman_runs_containers_on_the_overlay_with_published_ports(
    bed: Bed, duo: list[LocalAgent]
) -> None:
    a1, a2 = duo
    with podman_in(a1.ns, a1.cni_dir) as p1, podman_in(a2.ns, a2.cni_dir) as p2:
        assert "dcos" in p1.networks()  # the configuration list is what the runtime reads
        p1.import_busybox()
        p2.import_busybox()
        p1(
            *("run", "-d", "--name", "web", "--network", "dcos", "-p", "8080:80"),
            *(IMAGE, "/bin/busybox", "httpd", "-f", "-p", "80", "-h", "/www"),
        )
        p2(
            *("run", "-d", "--name", "client", "--network", "dcos", "--cap-add", "NET_RAW"),
            *(IMAGE, "/bin/busybox", "sleep", "600"),
        )
        web, web6 = p1.address("web"), p1.address("web", "GlobalIPv6Address")
        assert (web, web6) == ("9.0.0.2", "fd01:b::2")  # agent 1's Mesos half, both families
        assert p2.address("client") == "9.0.0.66"
        assert leases(a1) == {"9.0.0.2", "fd01:b::2"}

        def client(*args: str) -> bool:
            done = p2("exec", "client", "/bin/busybox", *args, check=False)
            return done.returncode == 0 and (args[0] != "wget" or done.stdout == PAGE)

        for address in (web, web6):  # agent 2 -> agent 1 across VXLAN, each family
            wait_until(f"ping {address}", lambda a=address: client("ping", "-c", "1", "-W", "1", a))
        wait_until("HTTP to web", lambda: client("wget", "-q", "-O", "-", f"http://{web}/hello"))
        wait_until(
            "HTTP to web over IPv6",
            lambda: client("wget", "-q", "-O", "-", f"http://[{web6}]/hello"),
        )

        # the published port, from outside: the underlay host to agent 1's underlay address
        def published() -> bool:
            done = sh(
                *("ip", "netns", "exec", bed.underlay, "python3", "-c"),
                "import sys, urllib.request; "
                "sys.stdout.write(urllib.request.urlopen(sys.argv[1], timeout=2).read().decode())",
                f"http://{a1.ip}:8080/hello",
                check=False,
            )
            return done.returncode == 0 and done.stdout == PAGE

        wait_until("the published port", published, timeout=10)

        p1("rm", "--force", "--time", "0", "web")
        p2("rm", "--force", "--time", "0", "client")
        assert leases(a1) == leases(a2) == set()
        rules = sh("ip", "netns", "exec", a1.ns, "iptables", "-t", "nat", "-S").stdout
        assert "8080" not in rules  # portmap's DNAT went with the container
