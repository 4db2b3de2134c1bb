"""In-process agents: a real ``Reconciler`` (real ``Kernel``, nft, CNI files) per agent namespace,
fed cluster-state documents directly (no masters involved)."""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv4Address
from pathlib import Path
from typing import Any

from topology import Bed

from overlay_agent.cluster import ClusterState
from overlay_agent.desired import AgentOptions
from overlay_agent.nat import Nat
from overlay_agent.netlink import Kernel
from overlay_agent.reconciler import Outcome, Reconciler, Settings


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
        return self.cni_dir / f"{overlay}.conf"

    def close(self) -> None:
        self.reconciler.kernel.close()


def local_agent(bed: Bed, k: int, **options: Any) -> LocalAgent:
    ns, ip = bed.agent_ns(k), bed.agent_ip(k)
    cni_dir = bed.root / f"a{k}" / "cni"
    data_dir = bed.root / f"a{k}" / "run" / "cni" / "networks"
    settings = Settings(AgentOptions(ip=IPv4Address(ip), **options), ns, cni_dir, data_dir)
    reconciler = Reconciler(settings, Kernel(ns, IPv4Address(ip)), Nat(ns))
    return LocalAgent(k, ns, ip, cni_dir, data_dir, reconciler)
