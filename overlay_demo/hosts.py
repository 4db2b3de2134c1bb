"""The demo's hosts: network namespaces, every one named ``<prefix><role>``.

- ``<prefix>u``: the underlay, a bridge ``br0`` standing in for the hosts' shared network;
- ``<prefix>a<k>``: agent k's host, ``eth0`` on the underlay with 192.0.2.(10+k)/24;
- ``<prefix>c<k>``: a test container, attached later by CNI.

Everything is made with ``ip``. A veth pair is created inside the underlay namespace with its
peer put straight into the agent's, so no link, address or route ever appears in the root
namespace. The prefix is the demo's mark: namespaces that carry it and are left from a run that
crashed are removed before a new run starts, so it must be specific (checked by ``check_prefix``).
"""

from __future__ import annotations

import re
import subprocess
from ipaddress import IPv4Interface, IPv4Network
from pathlib import Path

from overlay_demo.errors import HostError

UNDERLAY = IPv4Network("192.0.2.0/24")  # TEST-NET-1: routed nowhere, so it clashes with nothing
NETNS_DIR = Path("/run/netns")
PREFIX_RULE = re.compile(r"[a-z][a-z0-9]{2,10}-\Z")
IP_TIMEOUT = 30.0


def check_prefix(prefix: str) -> str:
    if not PREFIX_RULE.match(prefix):
        raise HostError(
            f"namespace prefix {prefix!r}: expected 3 to 11 lower-case letters or digits "
            "(a letter first) and a '-', e.g. 'ovdemo-'"
        )
    return prefix


def ip(*args: str) -> str:
    try:
        done = subprocess.run(
            ["ip", *args], capture_output=True, text=True, timeout=IP_TIMEOUT, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as e:
        raise HostError(f"ip {' '.join(args)}: {e}") from e
    if done.returncode != 0:
        raise HostError(f"ip {' '.join(args)}: {done.stderr.strip() or done.returncode}")
    return done.stdout


def agent_interface(k: int) -> IPv4Interface:
    return IPv4Interface(f"{UNDERLAY[10 + k]}/{UNDERLAY.prefixlen}")


def leftover_namespaces(prefix: str) -> list[str]:
    try:
        names = sorted(p.name for p in NETNS_DIR.iterdir())
    except FileNotFoundError:
        return []
    return [name for name in names if name.startswith(prefix)]


class Hosts:
    """The namespaces of one run, in the order made (removed in reverse)."""

    def __init__(self, prefix: str) -> None:
        self.prefix = check_prefix(prefix)
        self.created: list[str] = []

    def name(self, role: str) -> str:
        return self.prefix + role

    def add_namespace(self, role: str) -> str:
        name = self.name(role)
        ip("netns", "add", name)
        self.created.append(name)
        ip("-n", name, "link", "set", "lo", "up")
        return name

    def add_underlay(self) -> str:
        ns = self.add_namespace("u")
        ip("-n", ns, "link", "add", "br0", "type", "bridge")
        ip("-n", ns, "link", "set", "br0", "up")
        return ns

    def add_agent_host(self, k: int) -> tuple[str, IPv4Interface]:
        """Agent k's namespace, its ``eth0`` plugged into the underlay bridge."""
        ns, underlay, port = self.add_namespace(f"a{k}"), self.name("u"), f"a{k}"
        ip("-n", underlay, "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", ns)
        ip("-n", underlay, "link", "set", port, "master", "br0", "up")
        address = agent_interface(k)
        ip("-n", ns, "addr", "add", str(address), "dev", "eth0")
        ip("-n", ns, "link", "set", "eth0", "up")
        return ns, address

    def add_container_host(self, k: int) -> str:
        return self.add_namespace(f"c{k}")

    def remove(self) -> list[str]:
        """Remove every namespace of this run; the problems, if any (the rest is still removed)."""
        problems = []
        for name in reversed(self.created):
            try:
                ip("netns", "del", name)
            except HostError as e:
                problems.append(str(e))
        self.created.clear()
        return problems


def remove_leftovers(prefix: str) -> list[str]:
    """Remove the namespaces an earlier run with this prefix left; their names."""
    found = leftover_namespaces(check_prefix(prefix))
    for name in found:
        ip("netns", "del", name)
    return found
