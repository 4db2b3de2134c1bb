"""Which containers are on this agent's bridges: what the agent reports to the masters.

- Mesos (CNI) half: host-local's leases, one file per address in ``<data dir>/<network>/``
  named after the address, holding the container ID and, on its second line, the interface
  name the runtime gave (older host-local wrote the ID only). A dual-stack container has a lease
  per family; they are one container (same ID and interface).
- Docker half: ``GET /networks/<network>`` of the Docker network we own, whose ``Containers``
  map gives each container's ID, name, MAC and addresses.

Reading is cheap (a directory listing and one Docker request per network), so the loop reads
the inventory often and reports it only when it differs from the last report (docs/api.md,
"Containers"): the report replaces the previous one whole, so nothing is ever merged.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from overlay_agent.desired import LocalOverlay
from overlay_agent.errors import CniError


@dataclass(frozen=True, order=True)
class Container:
    network: str
    half: str  # "mesos" | "docker"
    id: str
    interface: str | None = None
    address: str | None = None
    address6: str | None = None
    name: str | None = None
    mac: str | None = None

    def wire(self) -> dict[str, str]:
        doc = {"id": self.id, "network": self.network, "half": self.half}
        for key in ("address", "address6", "name", "mac", "interface"):
            value = getattr(self, key)
            if value is not None:
                doc[key] = value
        return doc


class NetworkInspector(Protocol):
    def network_containers(self, name: str) -> Mapping[str, Any]:
        """Docker's ``Containers`` map of network ``name`` (empty if there is none)."""
        ...


def inventory(
    overlays: Sequence[LocalOverlay], data_dir: Path, docker: NetworkInspector | None
) -> tuple[Container, ...]:
    """Every container on this agent's bridges, in a stable order. Raises ``CniError`` or
    ``DockerError`` when a source cannot be read (the last report then stays as it is)."""
    found: list[Container] = []
    for overlay in overlays:
        if overlay.mesos_bridge is not None:
            found += leases(overlay.name, data_dir / overlay.name)
        if overlay.docker_bridge is not None and docker is not None:
            found += docker_endpoints(overlay.name, docker.network_containers(overlay.name))
    return tuple(sorted(set(found)))


def leases(network: str, directory: Path) -> list[Container]:
    """The containers host-local leased addresses to, from the lease files in ``directory``."""
    try:
        entries = list(directory.iterdir()) if directory.is_dir() else []
        files = [(p.name, p.read_text(errors="replace")) for p in entries if _address(p.name)]
    except OSError as e:
        raise CniError(f"reading host-local leases in {directory}: {e}") from e
    return merge_leases(network, files)


def merge_leases(network: str, files: Iterable[tuple[str, str]]) -> list[Container]:
    """PURE: lease files (name, content) -> one container per (ID, interface)."""
    found: dict[tuple[str, str | None], dict[str, str | None]] = {}
    for name, content in files:
        address = _address(name)
        lines = [line.strip() for line in content.splitlines() if line.strip()]
        if address is None or not lines:
            continue
        key = (lines[0], lines[1] if len(lines) > 1 else None)
        family = "address" if address.version == 4 else "address6"
        found.setdefault(key, {})[family] = str(address)
    return [
        Container(network, "mesos", cid, ifname, seen.get("address"), seen.get("address6"))
        for (cid, ifname), seen in found.items()
    ]


def docker_endpoints(network: str, containers: Mapping[str, Any]) -> list[Container]:
    """PURE: Docker's ``Containers`` map of one network -> containers."""
    found = []
    for cid, endpoint in containers.items():
        if not isinstance(endpoint, Mapping) or cid.startswith("ep-"):  # load-balancer endpoints
            continue
        found.append(
            Container(
                network,
                "docker",
                str(cid),
                address=_bare(endpoint.get("IPv4Address")),
                address6=_bare(endpoint.get("IPv6Address")),
                name=str(endpoint["Name"]) if endpoint.get("Name") else None,
                mac=str(endpoint["MacAddress"]) if endpoint.get("MacAddress") else None,
            )
        )
    return found


def _address(name: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(name)
    except ValueError:
        return None


def _bare(value: object) -> str | None:
    """``9.0.0.34/27`` -> ``9.0.0.34``; empty or malformed -> None."""
    if not isinstance(value, str) or not value:
        return None
    try:
        return str(ipaddress.ip_interface(value).ip)
    except ValueError:
        return None
