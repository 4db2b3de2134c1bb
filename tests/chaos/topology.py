"""The chaos network: a "switch" namespace with a bridge, one namespace per replica and one for
the client (workload, nemesis, checker), all joined to the bridge by veth pairs.

Safety: nothing is added to the root namespace. Veth pairs are created inside the switch
namespace with their peer placed straight into the target namespace; addresses come from the
documentation range 198.51.100.0/24 and exist only inside these namespaces. Partitions are nft
rules inside the replica namespaces (table ``inet chaos``); the root firewall is never touched.
``destroy`` deletes every namespace this topology created (names carry a per-run prefix).
"""

from __future__ import annotations

import secrets
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

NET = "198.51.100"
REPLICAS = 3
RAFT_PORT = 7000
HTTP_PORT = 8080
CLIENT_HOST = 100


def sh(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(list(args), check=False, capture_output=True, text=True, timeout=60)
    if check and done.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed ({done.returncode}): {done.stderr.strip()}")
    return done


def replica_ip(index: int) -> str:
    return f"{NET}.{11 + index}"


@dataclass
class Topology:
    prefix: str = field(default_factory=lambda: f"ovc{secrets.token_hex(3)}-")
    namespaces: list[str] = field(default_factory=list)

    @property
    def switch(self) -> str:
        return f"{self.prefix}sw"

    @property
    def client(self) -> str:
        return f"{self.prefix}cl"

    def replica_ns(self, index: int) -> str:
        return f"{self.prefix}r{index + 1}"

    # -- life cycle -------------------------------------------------------------------------------

    def create(self) -> None:
        sw = self._netns(self.switch)
        sh("ip", "-n", sw, "link", "add", "br0", "type", "bridge")
        sh("ip", "-n", sw, "link", "set", "br0", "up")
        for index in range(REPLICAS):
            ns = self._netns(self.replica_ns(index))
            self._attach(ns, f"r{index + 1}", replica_ip(index))
            self._firewall(ns)
        self._attach(self._netns(self.client), "cl", f"{NET}.{CLIENT_HOST}")

    def destroy(self) -> None:
        for ns in reversed(self.namespaces):
            sh("ip", "netns", "del", ns, check=False)
        self.namespaces.clear()

    def _netns(self, name: str) -> str:
        if Path("/run/netns", name).exists():
            raise RuntimeError(f"namespace {name} already exists")
        sh("ip", "netns", "add", name)
        self.namespaces.append(name)
        sh("ip", "-n", name, "link", "set", "lo", "up")
        return name

    def _attach(self, ns: str, port: str, address: str) -> None:
        sw = self.switch
        sh("ip", "-n", sw, "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", ns)
        sh("ip", "-n", sw, "link", "set", port, "master", "br0", "up")
        sh("ip", "-n", ns, "addr", "add", f"{address}/24", "dev", "eth0")
        sh("ip", "-n", ns, "link", "set", "eth0", "up")

    def _firewall(self, ns: str) -> None:
        ruleset = (
            "table inet chaos {\n"
            "  chain input { type filter hook input priority 0; policy accept; }\n"
            "  chain output { type filter hook output priority 0; policy accept; }\n"
            "}\n"
        )
        subprocess.run(
            ["ip", "netns", "exec", ns, "nft", "-f", "-"],
            input=ruleset,
            text=True,
            check=True,
            capture_output=True,
            timeout=30,
        )

    # -- partitions -------------------------------------------------------------------------------

    def block(self, index: int, peer: int, inbound: bool, outbound: bool) -> None:
        """Drop traffic between replica ``index`` and replica ``peer``, as seen from ``index``."""
        ns, address = self.replica_ns(index), replica_ip(peer)
        if inbound:
            self._nft(ns, "add", "rule", "inet", "chaos", "input", "ip", "saddr", address, "drop")
        if outbound:
            self._nft(ns, "add", "rule", "inet", "chaos", "output", "ip", "daddr", address, "drop")

    def heal(self) -> None:
        for index in range(REPLICAS):
            ns = self.replica_ns(index)
            self._nft(ns, "flush", "chain", "inet", "chaos", "input")
            self._nft(ns, "flush", "chain", "inet", "chaos", "output")

    def rules(self, index: int) -> str:
        return self._nft(self.replica_ns(index), "list", "table", "inet", "chaos").stdout

    @staticmethod
    def _nft(ns: str, *args: str) -> subprocess.CompletedProcess[str]:
        return sh("ip", "netns", "exec", ns, "nft", *args)
