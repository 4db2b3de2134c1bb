"""Real ``overlay-agent`` processes in agent namespaces, talking HTTP to a real three-replica
master cluster on loopback (tests/harness/cluster.py): the world of the end-to-end tests.

Every agent programs its own namespace (``--netns``) from the root namespace's loopback; each is
started after the previous one is ready, so agent k holds VTEP k and block k - 1 of every
network, as in tests/statedoc.py. Everything started here is stopped by PID on exit.
"""

from __future__ import annotations

import contextlib
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from tests.harness.cluster import ROOT, Cluster, free_ports, running_cluster
from tests.netns.topology import Bed, Container, add_container
from tests.waiting import wait_until


@dataclass
class AgentProcess:
    k: int
    ns: str
    ip: str
    http: str
    cni_dir: Path
    args: list[str]
    proc: subprocess.Popen[bytes] | None = None

    def get(self, path: str) -> httpx.Response:
        return httpx.get(f"http://{self.http}{path}", timeout=2)

    def ready(self) -> bool:
        try:
            return self.get("/readyz").status_code == 200
        except httpx.HTTPError:
            return False

    def metric(self, name: str) -> float:
        text = self.get("/metrics").text
        match = re.search(rf"^{re.escape(name)} (\S+)$", text, re.M)
        return float(match.group(1)) if match else 0.0


@dataclass
class Answer:
    response: httpx.Response
    repeated: bool  # after a 503: an earlier try may have been applied already

    @property
    def status(self) -> int:
        return self.response.status_code

    @property
    def error(self) -> str | None:
        body = self.response.json()
        return body.get("error") if isinstance(body, dict) else None

    def done(self, status: int, *already: str) -> bool:
        """``status``, or, if repeated, an ``already`` error saying an earlier try went through."""
        return self.status == status or (self.repeated and self.error in already)


@dataclass
class World:
    bed: Bed
    masters: Cluster
    agents: list[AgentProcess]

    def start(self, agent: AgentProcess) -> None:
        agent.proc = self.bed.start(
            *agent.args, log=self.bed.root / f"agent-{agent.k}.log", env={"PYTHONPATH": str(ROOT)}
        )

    def wait_ready(self, agent: AgentProcess, timeout: float = 30) -> None:
        def ready() -> bool:
            assert agent.proc is not None and agent.proc.poll() is None, self.log(agent)
            return agent.ready()

        wait_until(f"agent {agent.k} ready", ready, timeout=timeout, every=0.1)

    def log(self, agent: AgentProcess) -> str:
        return (self.bed.root / f"agent-{agent.k}.log").read_text()[-3000:]

    def master_state(self) -> dict[str, Any]:
        replica = next(r for r in self.masters.replicas if r.alive)
        body: dict[str, Any] = self.masters.state(replica).json()
        return body

    def master(self, method: str, path: str, **kw: Any) -> Answer:
        """A request to a live replica, with the token (any replica takes any request). A 503
        (no quorum: the outcome is unknown) is repeated, as the API asks, for up to a minute."""
        replica = next(r for r in self.masters.replicas if r.alive)
        deadline = time.monotonic() + 60
        repeated = False
        while True:
            response = httpx.request(
                method, f"{replica.url}{path}", headers=self.masters.auth, timeout=15, **kw
            )
            if response.status_code != 503 or time.monotonic() > deadline:
                return Answer(response, repeated)
            repeated = True
            time.sleep(float(response.headers.get("Retry-After", "1")))

    def container(self, agent: AgentProcess, name: str, network: str = "dcos") -> Container:
        c = add_container(self.bed, agent.ns, agent.cni_dir / f"{network}.conflist", name)
        assert c.error is None, c.error
        return c


@contextlib.contextmanager
def running_world(
    bed: Bed,
    root: Path,
    count: int = 3,
    extra: dict[int, list[str]] | None = None,
    build: bool = True,
) -> Iterator[World]:
    """``count`` agent namespaces (unless the bed is built already: ``build=False``), the masters
    and one agent process per namespace, all ready. ``extra``: more arguments for agent k."""
    if build:
        bed.build(agents=count)
    with running_cluster(root / "masters") as masters:
        urls = ",".join(r.url for r in masters.replicas)
        ports = free_ports(count)
        agents = []
        for k in range(1, count + 1):
            http = f"127.0.0.1:{ports[k - 1]}"
            cni_dir = root / f"a{k}" / "cni"
            args = [
                sys.executable,
                "-m",
                "overlay_agent.cli",
                *("--masters", urls, "--ip", bed.agent_ip(k), "--netns", bed.agent_ns(k)),
                *("--token-file", str(masters.root / "token")),
                *("--cni-dir", str(cni_dir), "--cni-data-dir", str(root / f"a{k}" / "run")),
                *("--http", http, "--resync", "1", "--watch-timeout", "5"),
                *(extra or {}).get(k, []),
            ]
            agents.append(AgentProcess(k, bed.agent_ns(k), bed.agent_ip(k), http, cni_dir, args))
        world = World(bed, masters, agents)
        try:
            for a in agents:  # one after the other: VTEP n goes to agent n, as in statedoc
                world.start(a)
                world.wait_ready(a)
            yield world
        finally:
            for a in agents:
                if a.proc is not None:
                    bed.stop(a.proc)
