"""Starting the whole system in order, and undoing all of it.

Design notes:
- Up: the locks on the data dir and the namespace prefix (a live run's processes and
  namespaces are never leftovers) -> leftovers of a crashed run -> the three masters (each answering ``/readyz``) -> the
  underlay -> each agent's namespace and process, one after the other (on a fresh cluster agent
  k then gets VTEP k, as in the tests) -> one container per agent through that agent's own CNI
  config -> every container pings the next one's address across agents. The system is
  announced only once that works: what the banner promises has been seen to work.
- Whatever a step makes is recorded before the next step starts (namespaces in ``Hosts``,
  processes here and in the PID record), so a failure or a signal half-way undoes exactly what
  exists.
- Down, always in full whatever failed: CNI DEL of the containers (host-local's leases go, so
  the agents report no containers), the agents stopped, the agents deleted from the masters (the
  page and ``overlayctl`` then show no hosts that are gone; a deleted agent that comes back gets
  its old allocation while it is free), every namespace removed, the masters stopped last.
- Nothing is ever added to the root namespace: agents run here but program their ``--netns``;
  masters and agents listen on loopback only.
"""

from __future__ import annotations

import functools
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from ipaddress import IPv4Interface
from pathlib import Path
from typing import IO

import httpx

from overlay_demo import cni_runtime
from overlay_demo.errors import StartError
from overlay_demo.hosts import Hosts, remove_leftovers
from overlay_demo.leftovers import LOCK_DIR, ProcessRecord, hold_lock
from overlay_demo.stopping import Stopping
from overlay_master import devcluster
from overlay_master.devcluster import Layout
from overlay_wire.contract import DELETE_AGENTS_PATH

AGENTS = 3
AGENT_READY_TIMEOUT = 60.0
PING_TIMEOUT = 30.0
FORGET_TIMEOUT = 10.0
LOG_TAIL = 2000


@dataclass(frozen=True)
class Options:
    prefix: str
    agent_http_port: int
    network: str
    agents: bool  # False: the masters only


@dataclass
class Agent:
    k: int
    ns: str
    address: IPv4Interface
    http: str
    home: Path  # this run's CNI configs and host-local leases, removed at the end
    log: Path
    proc: subprocess.Popen[bytes] | None = None

    @property
    def ip(self) -> str:
        return str(self.address.ip)

    def command(self, cluster: Layout) -> list[str]:
        return [
            *(sys.executable, "-m", "overlay_agent.cli", "--masters", ",".join(cluster.urls)),
            *("--ip", self.ip, "--netns", self.ns, "--token-file", str(cluster.token)),
            *("--cni-dir", str(self.home / "cni"), "--cni-data-dir", str(self.home / "leases")),
            *("--http", self.http),
        ]

    def ready(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            raise StartError(f"agent {self.k} exited ({self.proc.returncode}); {tail(self.log)}")
        try:
            return httpx.get(f"http://{self.http}/readyz", timeout=1.0).status_code == 200
        except httpx.HTTPError:
            return False


@dataclass
class Container:
    agent: Agent
    attachment: cni_runtime.Attachment

    @property
    def ns(self) -> str:
        return self.attachment.netns


@dataclass
class System:
    cluster: Layout
    options: Options
    stopping: Stopping
    masters: list[subprocess.Popen[bytes]] = field(default_factory=list)
    agents: list[Agent] = field(default_factory=list)
    containers: list[Container] = field(default_factory=list)
    hosts: Hosts | None = None
    locks: list[IO[str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.record = ProcessRecord(self.cluster.data / "demo.pids")
        self.home = self.cluster.data / "demo"

    def claim(self) -> list[str]:
        """Claim the data dir (and the prefix) and end what a crashed run left; a line for each
        kind found."""
        self.locks.append(
            hold_lock(self.cluster.data / "demo.lock", f"data dir {self.cluster.data}")
        )
        if self.options.agents:
            lock = LOCK_DIR / f"overlay-demo-{self.options.prefix}lock"
            self.locks.append(hold_lock(lock, f"namespace prefix {self.options.prefix}"))
        notes = []
        if ended := self.record.end_leftovers():
            notes.append(f"ended processes an earlier run left: {' '.join(map(str, ended))}")
        if self.options.agents:
            if removed := remove_leftovers(self.options.prefix):
                notes.append(f"removed namespaces an earlier run left: {' '.join(removed)}")
            shutil.rmtree(self.home, ignore_errors=True)
        return notes

    def start_masters(self) -> None:
        c = self.cluster
        for i in range(devcluster.REPLICAS):
            self.masters.append(self._spawn(c.command(i), c.log(i)))
        if not devcluster.wait_ready(c.http, self.masters, lambda: bool(self.stopping)):
            self.stopping.check()
            raise StartError(f"the masters did not become ready; see the logs in {c.data}")

    def start_agents(self) -> None:
        self.hosts = Hosts(self.options.prefix)
        self.hosts.add_underlay()
        for k in range(1, AGENTS + 1):
            self.stopping.check()
            ns, address = self.hosts.add_agent_host(k)
            http = f"{self.cluster.host}:{self.options.agent_http_port + k - 1}"
            log = self.cluster.data / f"agent-{k}.log"
            agent = Agent(k, ns, address, http, self.home / f"a{k}", log)
            self.agents.append(agent)
            agent.proc = self._spawn(agent.command(self.cluster), log)
            self.stopping.wait_until(f"agent {k} ready", agent.ready, AGENT_READY_TIMEOUT)

    def start_containers(self) -> None:
        assert self.hosts is not None, "start_agents first"
        network = self.options.network
        for agent in self.agents:
            self.stopping.check()
            path = cni_runtime.find_config(agent.home / "cni", network)
            if path is None:
                raise StartError(
                    f"agent {agent.k} wrote no CNI config for network {network!r} in "
                    f"{agent.home / 'cni'} (it has: {_names(agent.home / 'cni') or 'none'})"
                )
            ns = self.hosts.add_container_host(agent.k)
            config = cni_runtime.NetworkConfig.load(path)
            attachment = cni_runtime.attach(config, agent.ns, container_id=ns, netns=ns)
            self.containers.append(Container(agent, attachment))

    def check_pings(self) -> None:
        """Every container reaches the next one's address (on another agent) over VXLAN."""
        nexts = self.containers[1:] + self.containers[:1]
        for src, dst in zip(self.containers, nexts, strict=True):
            what = f"{src.ns} (agent {src.agent.k}) pinging {dst.attachment.address} ({dst.ns})"
            self.stopping.wait_until(what, functools.partial(pings, src, dst), PING_TIMEOUT)

    def wait(self) -> str | None:
        """Until a stop signal (None) or a child exits (what exited)."""
        logs = [self.cluster.log(i) for i in range(len(self.masters))]
        named = [(f"replica {i + 1}", p, logs[i]) for i, p in enumerate(self.masters)]
        named += [(f"agent {a.k}", a.proc, a.log) for a in self.agents if a.proc is not None]
        while not self.stopping:
            for name, proc, log in named:
                if proc.poll() is not None:
                    return f"{name} exited ({proc.returncode}); {tail(log)}"
            time.sleep(0.2)
        return None

    def stop(self) -> list[str]:
        """Undo everything this run made, in order; the problems (the rest is still undone)."""
        problems = []
        for container in reversed(self.containers):
            problems += cni_runtime.detach(container.attachment)
        self.containers.clear()
        started = [a for a in self.agents if a.proc is not None]
        devcluster.stop_all([a.proc for a in started if a.proc is not None])
        if started and any(p.poll() is None for p in self.masters):
            problems += self._forget([a.ip for a in started])
        self.agents.clear()
        if self.hosts is not None:
            problems += self.hosts.remove()
        devcluster.stop_all(self.masters)
        self.masters.clear()
        if self.locks:  # only the run holding the locks may touch what they guard
            self.record.clear()
            shutil.rmtree(self.home, ignore_errors=True)
        for lock in self.locks:
            lock.close()
        self.locks.clear()
        return problems

    def _spawn(self, command: list[str], log: Path) -> subprocess.Popen[bytes]:
        proc = devcluster.spawn(command, log)
        self.record.add(proc.pid)
        return proc

    def _forget(self, ips: list[str]) -> list[str]:
        """Delete the demo's agents on the masters (retried on 503 and unreachable masters)."""
        try:
            token = self.cluster.token.read_text(encoding="utf-8").strip()
        except OSError as e:
            return [f"deleting the demo's agents on the masters: {e}"]
        headers = {"Authorization": f"Bearer {token}"}
        deadline = time.monotonic() + FORGET_TIMEOUT
        last = "no master answered"
        with httpx.Client(timeout=2.0, headers=headers) as client:
            while time.monotonic() < deadline:
                for url in self.cluster.urls:
                    try:
                        answer = client.post(url + DELETE_AGENTS_PATH, json={"agents": ips})
                    except httpx.HTTPError as e:
                        last = f"{url}: {e}"
                        continue
                    if answer.status_code == 200:
                        return []
                    last = f"{url}: {answer.status_code} {answer.text[:200]}"
                    if answer.status_code != 503:
                        return [f"deleting the demo's agents on the masters: {last}"]
                time.sleep(0.2)
        return [f"deleting the demo's agents on the masters: {last}"]


def pings(src: Container, dst: Container) -> bool:
    command = ["ip", "netns", "exec", src.ns, "ping", "-c", "1", "-W", "1"]
    try:
        done = subprocess.run(
            [*command, dst.attachment.address], capture_output=True, timeout=10, check=False
        )
    except subprocess.TimeoutExpired:
        return False
    return done.returncode == 0


def tail(log: Path) -> str:
    try:
        text = log.read_text(encoding="utf-8", errors="replace")[-LOG_TAIL:]
    except OSError as e:
        return f"its log {log} cannot be read: {e}"
    return f"the end of {log}:\n{text}"


def _names(directory: Path) -> str:
    try:
        return " ".join(sorted(p.name for p in directory.iterdir()))
    except OSError:
        return ""
