"""Network-namespace test beds: an underlay namespace with a bridge, agent namespaces joined to
it by veth pairs, and container namespaces attached through the real CNI plugins.

Everything is created inside namespaces whose names carry a per-run prefix; the root namespace's
links, routes and firewall are never touched (veth pairs are created inside the underlay
namespace with their peer placed straight into the agent namespace). ``Bed.destroy()`` removes
every namespace it created and kills every process it started, by PID.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CNI_PATH = "/usr/lib/cni"
UNDERLAY_NET = "192.0.2"


def sh(
    *args: str, input: str | None = None, check: bool = True
) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        list(args), check=False, input=input, capture_output=True, text=True, timeout=60
    )
    if check and done.returncode != 0:
        raise AssertionError(f"{' '.join(args)} failed ({done.returncode}): {done.stderr.strip()}")
    return done


def ipj(ns: str, *args: str) -> Any:
    """``ip -n NS -j ARGS`` parsed (independent of pyroute2)."""
    out = sh("ip", "-n", ns, "-j", *args).stdout
    return json.loads(out) if out.strip() else []


@dataclass
class Bed:
    root: Path
    prefix: str = field(default_factory=lambda: f"ovt{secrets.token_hex(3)}-")
    namespaces: list[str] = field(default_factory=list)
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def underlay(self) -> str:
        return f"{self.prefix}u"

    def agent_ns(self, k: int) -> str:
        return f"{self.prefix}a{k}"

    def agent_ip(self, k: int) -> str:
        return f"{UNDERLAY_NET}.{10 + k}"

    def netns(self, name: str) -> str:
        full = name if name.startswith(self.prefix) else self.prefix + name
        if Path("/run/netns", full).exists():
            raise AssertionError(f"namespace {full} already exists")
        sh("ip", "netns", "add", full)
        self.namespaces.append(full)
        sh("ip", "-n", full, "link", "set", "lo", "up")
        return full

    def build(self, agents: int) -> None:
        u = self.netns("u")
        sh("ip", "-n", u, "link", "add", "br0", "type", "bridge")
        sh("ip", "-n", u, "addr", "add", f"{UNDERLAY_NET}.1/24", "dev", "br0")
        sh("ip", "-n", u, "link", "set", "br0", "up")
        for k in range(1, agents + 1):
            self.add_agent(k)

    def add_agent(self, k: int) -> str:
        a = self.netns(f"a{k}")
        u = self.underlay
        sh(
            "ip",
            "-n",
            u,
            "link",
            "add",
            f"v{k}",
            "type",
            "veth",
            "peer",
            "name",
            "eth0",
            "netns",
            a,
        )
        sh("ip", "-n", u, "link", "set", f"v{k}", "master", "br0", "up")
        sh("ip", "-n", a, "addr", "add", f"{self.agent_ip(k)}/24", "dev", "eth0")
        sh("ip", "-n", a, "link", "set", "eth0", "up")
        return a

    def start(
        self, *args: str, log: Path, env: dict[str, str] | None = None
    ) -> subprocess.Popen[bytes]:
        with log.open("ab") as out:
            proc = subprocess.Popen(
                list(args),
                stdout=out,
                stderr=subprocess.STDOUT,
                env={**os.environ, **(env or {})},
                start_new_session=True,
            )
        self.processes.append(proc)
        return proc

    def stop(
        self, proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM, timeout: float = 10.0
    ) -> None:
        if proc.poll() is None:
            proc.send_signal(sig)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)

    def destroy(self) -> None:
        for proc in reversed(self.processes):
            self.stop(proc)
        for ns in reversed(self.namespaces):
            sh("ip", "netns", "del", ns, check=False)
        self.namespaces.clear()


@dataclass
class Container:
    ns: str
    agent_ns: str
    conf: str
    id: str
    ip: str | None
    error: str | None
    ip6: str | None = None
    result: dict[str, Any] | None = None  # the chain's ADD result (DEL gets it as prevResult)


def cni(
    bed: Bed, command: str, agent_ns: str, container_ns: str, conf: str, cid: str
) -> subprocess.CompletedProcess[str]:
    """Run one plugin the way a container runtime does, inside the agent namespace."""
    plugin = json.loads(conf)["type"]
    return sh(
        "ip",
        "netns",
        "exec",
        agent_ns,
        "env",
        f"CNI_COMMAND={command}",
        f"CNI_CONTAINERID={cid}",
        f"CNI_NETNS=/var/run/netns/{container_ns}",
        "CNI_IFNAME=eth0",
        f"CNI_PATH={CNI_PATH}",
        f"{CNI_PATH}/{plugin}",
        input=conf,
        check=False,
    )


def chain(
    bed: Bed,
    command: str,
    agent_ns: str,
    container_ns: str,
    conf: str,
    cid: str,
    prev: dict[str, Any] | None = None,
) -> subprocess.CompletedProcess[str]:
    """A ``.conf`` or a ``.conflist`` as libcni runs it (no cnitool in Debian): a list's plugins in
    order for ADD, each given the previous one's result, and in reverse order for DEL."""
    doc = json.loads(conf)
    if "plugins" not in doc:
        return cni(bed, command, agent_ns, container_ns, conf, cid)
    plugins = doc["plugins"] if command == "ADD" else list(reversed(doc["plugins"]))
    done = None
    for plugin in plugins:
        one = {**plugin, "cniVersion": doc["cniVersion"], "name": doc["name"]}
        if prev is not None:
            one["prevResult"] = prev
        done = cni(bed, command, agent_ns, container_ns, json.dumps(one), cid)
        if done.returncode != 0:
            return done
        if command == "ADD":
            prev = json.loads(done.stdout)
    assert done is not None, "a configuration list without plugins"
    return done


def add_container(bed: Bed, agent_ns: str, conf_path: Path, name: str) -> Container:
    ns = bed.netns(name)
    conf = conf_path.read_text()
    done = chain(bed, "ADD", agent_ns, ns, conf, ns)
    if done.returncode != 0:
        chain(bed, "DEL", agent_ns, ns, conf, ns)  # a failed ADD leaves its veth pair behind
        return Container(ns, agent_ns, conf, ns, None, done.stdout + done.stderr)
    result = json.loads(done.stdout)
    ips = [ip["address"].split("/")[0] for ip in result["ips"]]
    ip4 = next((ip for ip in ips if ":" not in ip), None)
    ip6 = next((ip for ip in ips if ":" in ip), None)
    return Container(ns, agent_ns, conf, ns, ip4, None, ip6, result)


def del_container(bed: Bed, c: Container) -> None:
    """CNI DEL through the same configuration (the namespace stays, removed with the bed)."""
    done = chain(bed, "DEL", c.agent_ns, c.ns, c.conf, c.id, c.result)
    assert done.returncode == 0, done.stderr


def pings(src_ns: str, dst: str) -> bool:
    """One ping (IPv4 or IPv6, by the address) answered within a second."""
    return (
        sh("ip", "netns", "exec", src_ns, "ping", "-c", "1", "-W", "1", dst, check=False).returncode
        == 0
    )


def ping_check(src_ns: str, dst: str) -> Callable[[], bool]:
    return lambda: pings(src_ns, dst)
