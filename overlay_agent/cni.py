"""CNI network configs for the Mesos half, and container-address accounting from host-local.

For every local overlay with a Mesos bridge the agent writes ``<cni_dir>/<name>.conf``: the
standard ``bridge`` plugin on ``m-<name>`` (gateway, hairpin, no masquerade: egress NAT is ours)
with ``host-local`` IPAM over the lower half of the agent subnet. host-local keeps its leases in a
``dataDir`` of this agent's own under a run directory (tmpfs on a real host: DC/OS leaked leases
across reboots with a persistent one). Files are written atomically and only when their content
changes; configs of overlays we no longer have are removed (only files we recognise as ours),
and with them their host-local leases.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterable
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path
from typing import Any

from overlay_agent.desired import Bridge, LocalOverlay
from overlay_agent.errors import CniError
from overlay_wire.contract import MESOS_BRIDGE_PREFIX

CNI_VERSION = "1.0.0"  # Debian's plugins (1.1.1) refuse anything newer


@dataclass(frozen=True)
class Capacity:
    """Container addresses of one bridge, as host-local sees them."""

    total: int
    used: int
    addresses: tuple[IPv4Address, ...]

    @property
    def free(self) -> int:
        return max(self.total - self.used, 0)


def config(overlay: str, bridge: Bridge, data_dir: Path) -> dict[str, Any]:
    return {
        "cniVersion": CNI_VERSION,
        "name": overlay,
        "type": "bridge",
        "bridge": bridge.name,
        "isGateway": True,
        "ipMasq": False,
        "hairpinMode": True,
        "mtu": bridge.mtu,
        "ipam": {
            "type": "host-local",
            "subnet": str(bridge.subnet),
            "gateway": str(bridge.gateway.ip),
            "dataDir": str(data_dir),
            "routes": [{"dst": "0.0.0.0/0"}],
        },
    }


def ensure_configs(cni_dir: Path, data_dir: Path, overlays: Iterable[LocalOverlay]) -> int:
    """Write the wanted configs and remove our stale ones; return how many files changed."""
    wanted = {
        f"{o.name}.conf": config(o.name, o.mesos_bridge, data_dir)
        for o in overlays
        if o.mesos_bridge is not None
    }
    try:
        cni_dir.mkdir(parents=True, exist_ok=True)
        data_dir.mkdir(parents=True, exist_ok=True)
        changed = sum(_write_if_changed(cni_dir / name, doc) for name, doc in wanted.items())
        for path in cni_dir.glob("*.conf"):
            if path.name not in wanted and _ours(path, data_dir):
                path.unlink()
                _forget_leases(data_dir / path.stem)
                changed += 1
    except OSError as e:
        raise CniError(f"writing CNI configs in {cni_dir}: {e}") from e
    return changed


def capacity(overlay: str, bridge: Bridge, data_dir: Path) -> Capacity:
    """host-local hands out every host address of the half except the gateway."""
    subnet = bridge.subnet
    total = max(subnet.num_addresses - 3, 0)
    return (
        Capacity(total=total, used=0, addresses=())
        if total == 0
        else _leases(overlay, subnet, total, data_dir)
    )


def _leases(overlay: str, subnet: IPv4Network, total: int, data_dir: Path) -> Capacity:
    leases = data_dir / overlay
    try:
        names = [p.name for p in leases.iterdir()] if leases.is_dir() else []
    except OSError as e:
        raise CniError(f"reading host-local leases in {leases}: {e}") from e
    addresses = sorted(a for a in map(_address, names) if a is not None and a in subnet)
    return Capacity(total=total, used=len(addresses), addresses=tuple(addresses))


def _address(name: str) -> IPv4Address | None:
    try:
        return IPv4Address(name)
    except ValueError:
        return None


def _write_if_changed(path: Path, doc: dict[str, Any]) -> bool:
    text = json.dumps(doc, indent=2, sort_keys=True) + "\n"
    if path.exists() and path.read_text() == text:
        return False
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)
    return True


def _forget_leases(leases: Path) -> None:
    """host-local's leases of a network we no longer have: a later network of the same name
    starts with none (and the capacity it reports is its own)."""
    if leases.is_dir():
        shutil.rmtree(leases)


def _ours(path: Path, data_dir: Path) -> bool:
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError):
        return False
    ipam = doc.get("ipam") if isinstance(doc, dict) else None
    return (
        isinstance(ipam, dict)
        and doc.get("type") == "bridge"
        and str(doc.get("bridge", "")).startswith(MESOS_BRIDGE_PREFIX)
        and ipam.get("dataDir") == str(data_dir)
    )
