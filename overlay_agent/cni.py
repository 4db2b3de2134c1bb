"""CNI network configurations for the Mesos half, and container-address accounting from host-local.

For every local overlay with a Mesos bridge the agent writes, per directory it was given:

- ``<cni_dir>/<name>.conflist``: a configuration LIST (the current CNI spec's format, the one
  libcni-based runtimes such as podman, containerd/CRI and nerdctl read), chaining the standard
  ``bridge`` plugin and ``portmap`` (``capabilities: {portMappings}``, so a runtime's published
  ports work on the overlay, as DC/OS's port mapper did for Mesos);
- ``<mesos_dir>/<name>.conf`` (only with a second directory): DC/OS's single-plugin form, the
  ``bridge`` plugin alone, for Mesos UCR's ``--network_cni_config_dir``.

Two directories, never both files in one: a runtime that reads ``.conf`` and ``.conflist`` alike
would otherwise see two networks of one name. Both forms use the same plugin settings: the bridge
``m-<name>`` (gateway, hairpin, no masquerade: egress NAT is ours) with ``host-local`` IPAM over
the lower half of the agent's block, one range per family (dual stack: every container gets an
address of each) and a default route per family. host-local keeps its leases in a ``dataDir`` of
this agent's own under a run directory (tmpfs on a real host: DC/OS leaked leases across reboots
with a persistent one); both forms share it, so they draw from one pool.

``cniVersion`` is 1.0.0: Debian's plugins (1.1.1) refuse anything newer. Files are written
atomically and only when their content changes; files of ours (recognised by the bridge plugin on
an ``m-`` bridge with our ``dataDir``) that no overlay wants in that directory are removed,
including a ``.conf`` that an earlier version of the agent wrote into ``cni_dir``; with the
last file of a network go its host-local leases (a later network of the same name starts with
none).
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from ipaddress import IPv4Network, IPv6Network, ip_address
from pathlib import Path
from typing import Any

from overlay_agent.desired import Address, Bridge, LocalOverlay
from overlay_agent.errors import CniError
from overlay_wire.contract import MESOS_BRIDGE_PREFIX

CNI_VERSION = "1.0.0"  # Debian's plugins (1.1.1) refuse anything newer
CONFLIST = ".conflist"
CONF = ".conf"
PORTMAP = {"type": "portmap", "capabilities": {"portMappings": True}, "snat": True}
DEFAULT_ROUTE = {4: "0.0.0.0/0", 6: "::/0"}


@dataclass(frozen=True)
class Capacity:
    """Container addresses of one bridge, as host-local sees them."""

    total: int
    used: int
    addresses: tuple[Address, ...]

    @property
    def free(self) -> int:
        return max(self.total - self.used, 0)


def bridge_plugin(bridge: Bridge, data_dir: Path) -> dict[str, Any]:
    """The ``bridge`` plugin with ``host-local`` over the bridge's half in each of its families."""
    ranges = [[{"subnet": str(a.network), "gateway": str(a.ip)}] for a in bridge.addresses]
    return {
        "type": "bridge",
        "bridge": bridge.name,
        "isGateway": True,
        "ipMasq": False,
        "hairpinMode": True,
        "mtu": bridge.mtu,
        "ipam": {
            "type": "host-local",
            "ranges": ranges,
            "dataDir": str(data_dir),
            "routes": [{"dst": DEFAULT_ROUTE[a.version]} for a in bridge.addresses],
        },
    }


def conflist(overlay: str, bridge: Bridge, data_dir: Path) -> dict[str, Any]:
    """The configuration list current runtimes read: bridge, then portmap."""
    return {
        "cniVersion": CNI_VERSION,
        "name": overlay,
        "plugins": [bridge_plugin(bridge, data_dir), PORTMAP],
    }


def config(overlay: str, bridge: Bridge, data_dir: Path) -> dict[str, Any]:
    """DC/OS's single-plugin form (a ``.conf``), for Mesos UCR."""
    return {"cniVersion": CNI_VERSION, "name": overlay, **bridge_plugin(bridge, data_dir)}


def ensure_configs(
    cni_dir: Path | None,
    data_dir: Path,
    overlays: Sequence[LocalOverlay],
    mesos_dir: Path | None = None,
) -> int:
    """Write the wanted files in each directory given and remove our stale ones there; return
    how many files changed."""
    forms = [(cni_dir, CONFLIST, conflist), (mesos_dir, CONF, config)]
    wanted = {o.name for o in overlays if o.mesos_bridge is not None}
    changed, removed = 0, set()
    for directory, suffix, render in forms:
        if directory is None:
            continue
        files = {
            o.name + suffix: render(o.name, o.mesos_bridge, data_dir)
            for o in overlays
            if o.mesos_bridge is not None
        }
        try:
            written, gone = _ensure_directory(directory, data_dir, files)
        except OSError as e:
            raise CniError(f"writing CNI configs in {directory}: {e}") from e
        changed += written
        removed |= gone
    # Leases go only with a network no directory wants any more (an old .conf removed on
    # upgrade must not take the leases of the live .conflist with it).
    for name in sorted(removed - wanted):
        try:
            _forget_leases(data_dir / name)
        except OSError as e:
            raise CniError(f"removing the leases of network {name} in {data_dir}: {e}") from e
    return changed


def _ensure_directory(
    directory: Path, data_dir: Path, files: Mapping[str, Any]
) -> tuple[int, set[str]]:
    """Write ``files`` in ``directory``, remove our other files there; (files changed, names of
    the networks whose files were removed)."""
    directory.mkdir(parents=True, exist_ok=True)
    data_dir.mkdir(parents=True, exist_ok=True)
    changed = sum(_write_if_changed(directory / name, doc) for name, doc in files.items())
    removed = set()
    for path in sorted(directory.iterdir()):
        if path.suffix in (CONF, CONFLIST) and path.name not in files and _ours(path, data_dir):
            path.unlink()
            removed.add(path.stem)
            changed += 1
    return changed, removed


def capacity(overlay: str, bridge: Bridge, data_dir: Path) -> Capacity:
    """host-local hands out every host address of the half except the gateway (and, in IPv4,
    the broadcast address). Dual stack: every container takes one address of each family, so
    the IPv4 half (far the smaller) is the one that counts."""
    subnet: IPv4Network | IPv6Network | None = bridge.subnet or bridge.subnet6
    if subnet is None:
        return Capacity(total=0, used=0, addresses=())
    total = max(subnet.num_addresses - (3 if subnet.version == 4 else 2), 0)
    return (
        Capacity(total=total, used=0, addresses=())
        if total == 0
        else _leases(overlay, subnet, total, data_dir)
    )


def _leases(
    overlay: str, subnet: IPv4Network | IPv6Network, total: int, data_dir: Path
) -> Capacity:
    leases = data_dir / overlay
    try:
        names = [p.name for p in leases.iterdir()] if leases.is_dir() else []
    except OSError as e:
        raise CniError(f"reading host-local leases in {leases}: {e}") from e
    addresses = sorted(
        (a for a in map(_address, names) if a is not None and a.version == subnet.version),
        key=int,
    )
    inside = tuple(a for a in addresses if a in subnet)
    return Capacity(total=total, used=len(inside), addresses=inside)


def _address(name: str) -> Address | None:
    try:
        return ip_address(name)
    except ValueError:
        return None


def _write_if_changed(path: Path, doc: Mapping[str, Any]) -> bool:
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
    """A bridge plugin on an ``m-`` bridge with our lease directory, alone or first in a list."""
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError):
        return False
    if not isinstance(doc, dict):
        return False
    plugins = doc.get("plugins")
    plugin = plugins[0] if isinstance(plugins, list) and plugins else doc
    ipam = plugin.get("ipam") if isinstance(plugin, dict) else None
    return (
        isinstance(plugin, dict)
        and isinstance(ipam, dict)
        and plugin.get("type") == "bridge"
        and str(plugin.get("bridge", "")).startswith(MESOS_BRIDGE_PREFIX)
        and ipam.get("dataDir") == str(data_dir)
    )
