"""In-process agents: a real ``Reconciler`` (real ``Kernel``, nft, CNI files) per agent namespace,
fed cluster-state documents directly (no masters involved); and what an agent namespace holds,
read with ``ip``, ``bridge`` and ``nft`` (independent of the agent's own code)."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path
from typing import Any

from overlay_agent.cluster import ClusterState
from overlay_agent.desired import AgentOptions
from overlay_agent.docker_engine import Docker
from overlay_agent.firewall import Firewall
from overlay_agent.netlink import Kernel
from overlay_agent.reconciler import Outcome, Reconciler, Settings
from tests import statedoc
from tests.netns.topology import Bed, ipj, sh


@dataclass
class LocalAgent:
    k: int
    ns: str
    ip: str
    cni_dir: Path
    data_dir: Path
    reconciler: Reconciler
    revision: int = 0

    def reconcile(self, document: dict[str, Any]) -> Outcome:
        self.revision += 1
        return self.reconciler.reconcile(ClusterState.from_document(document, self.revision))

    def conf(self, overlay: str = "dcos") -> Path:
        return self.cni_dir / f"{overlay}.conflist"

    def close(self) -> None:
        self.reconciler.kernel.close()
        if self.reconciler.docker is not None:
            self.reconciler.docker.close()


def local_agent(
    bed: Bed, k: int, docker_host: str | None = None, mesos_cni: bool = False, **options: Any
) -> LocalAgent:
    """Agent ``k``; ``mesos_cni``: also DC/OS's single-plugin ``.conf`` files, in ``mesos/``."""
    ns, ip = bed.agent_ns(k), bed.agent_ip(k)
    cni_dir = bed.root / f"a{k}" / "cni"
    data_dir = bed.root / f"a{k}" / "run" / "cni" / "networks"
    mesos_dir = bed.root / f"a{k}" / "mesos" if mesos_cni else None
    options_ = AgentOptions(ip=IPv4Address(ip), **options)
    settings = Settings(options_, ns, cni_dir, data_dir, mesos_dir)
    engine = Docker(docker_host) if docker_host else None
    reconciler = Reconciler(settings, Kernel(ns, IPv4Address(ip)), Firewall(ns), engine)
    return LocalAgent(k, ns, ip, cni_dir, data_dir, reconciler)


@contextlib.contextmanager
def local_agents(bed: Bed, count: int = 3) -> Iterator[list[LocalAgent]]:
    """Build ``count`` agent namespaces and an in-process agent for each; closed on exit."""
    bed.build(agents=count)
    agents = [local_agent(bed, k) for k in range(1, count + 1)]
    try:
        yield agents
    finally:
        for a in agents:
            a.close()


def delete_fdb_by_hand(ns: str, mac: str, dst: str) -> None:
    """Drift: remove one of the agent's FDB entries behind its back."""
    sh("bridge", "-n", ns, "fdb", "del", mac, "dev", "vtep1024", "dst", dst, "self")


def cluster(bed: Bed, ks: tuple[int, ...] = (1, 2, 3), **kw: object) -> dict[str, object]:
    return statedoc.state([statedoc.record(bed.agent_ip(k), k) for k in ks], **kw)  # type: ignore[arg-type]


def routes(ns: str) -> set[tuple[str, str]]:
    return {(r["dst"], r.get("gateway", "")) for r in ipj(ns, "route", "show", "proto", "211")}


def neighbours(ns: str) -> set[tuple[str, str]]:
    return {
        (n["dst"], n["lladdr"])
        for n in ipj(ns, "neigh", "show", "dev", "vtep1024")
        if "PERMANENT" in n.get("state", [])
    }


def fdb(ns: str) -> set[tuple[str, str]]:
    out = json.loads(sh("bridge", "-n", ns, "-j", "fdb", "show", "dev", "vtep1024").stdout)
    return {(e["mac"], e["dst"]) for e in out if "self" in e.get("flags", []) and "dst" in e}


def expected_peer_objects(
    bed: Bed, me: int, peers: tuple[int, ...]
) -> tuple[set[tuple[str, str]], ...]:
    r = {(str(statedoc.block("9.0.0.0/8", 26, k - 1)), f"44.128.0.{k}") for k in peers if k != me}
    n = {(f"44.128.0.{k}", f"70:b3:d5:80:00:{k:02x}") for k in peers if k != me}
    f = {(f"70:b3:d5:80:00:{k:02x}", bed.agent_ip(k)) for k in peers if k != me}
    return r, n, f


def elements(ns: str) -> dict[str, set[str]]:
    """The agent's nftables sets as text: "9.0.0.0/8", "9.0.0.0/8 . 10.128.0.0/16"."""
    done = sh("ip", "netns", "exec", ns, "nft", "-j", "list", "table", "inet", "overlay_agent")
    sets: dict[str, set[str]] = {}
    for item in json.loads(done.stdout)["nftables"]:
        if "set" in item:
            sets[item["set"]["name"]] = {_text(e) for e in item["set"].get("elem", [])}
    return sets


def _text(element: Any) -> str:
    if isinstance(element, dict) and "concat" in element:
        return " . ".join(_text(p) for p in element["concat"])
    if isinstance(element, dict):
        return f"{element['prefix']['addr']}/{element['prefix']['len']}"
    return str(element)


def counted(ns: str, chain: str) -> int:
    """Packets our rules in ``chain`` have counted (isolation drops, spoofing drops)."""
    done = sh(
        "ip", "netns", "exec", ns, "nft", "-j", "list", "chain", "inet", "overlay_agent", chain
    )
    return sum(
        e["counter"]["packets"]
        for item in json.loads(done.stdout)["nftables"]
        if "rule" in item
        for e in item["rule"]["expr"]
        if "counter" in e
    )


def bridges(ns: str) -> set[str]:
    return {link["ifname"] for link in ipj(ns, "link", "show", "type", "bridge")}


def gateway(ns: str, bridge: str) -> set[str]:
    (link,) = ipj(ns, "-4", "addr", "show", "dev", bridge)
    return {f"{a['local']}/{a['prefixlen']}" for a in link["addr_info"]}


def network_routes(ns: str, space: IPv4Network) -> set[str]:
    return {dst for dst, _ in routes(ns) if IPv4Network(dst).subnet_of(space)}
