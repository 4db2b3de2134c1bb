"""The network config as a value (pure): virtual networks, the VTEP space, and their plain form.

Validation of untrusted input into these values lives in ``validation``; reading files in
``config``. The value is immutable (frozen dataclasses with ``ipaddress`` values). ``to_plain``
gives the canonical plain-data form that travels through the Raft log: plain data pickles
stably, our classes might move.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from ipaddress import IPv4Network, IPv6Network
from typing import Any

from overlay_wire.contract import MAX_OVERLAY_NAME

RESERVED_NAMES = ("host", "bridge", "default", "none")
MAX_NAME_LENGTH = MAX_OVERLAY_NAME  # 15 (Linux ifname limit) - len("m-")
MIN_VTEP_PREFIX = 8  # the MAC carries only the low 24 bits of the VTEP IP
MAX_VTEP_PREFIX = 30  # the network and broadcast addresses are never handed out
MAX_VTEP6_PREFIX = 126
MAX_PREFIX = 30
MAX_PREFIX6 = 126
MIN_MTU = 552  # DC/OS gen/calc.py
MAX_MTU = 65535
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
OUI_PATTERN = re.compile(r"^[0-9A-Fa-f]{1,2}(:[0-9A-Fa-f]{1,2}){5}$")

NETWORK_KEYS = ("vtep_subnet", "vtep_mac_oui", "vtep_subnet6", "vtep_mtu", "overlays")
OVERLAY_KEYS = ("name", "subnet", "prefix", "subnet6", "prefix6", "enabled", "allow_from")
DCOS_KEY = "dcos_overlay_network"


@dataclass(frozen=True)
class OverlayConfig:
    """One virtual network: its address space(s), the size of each agent's block, and which
    other networks may reach its containers (``allow_from``; by default none: isolated)."""

    name: str
    subnet: IPv4Network | None = None
    prefix: int | None = None
    subnet6: IPv6Network | None = None
    prefix6: int | None = None
    enabled: bool = True
    allow_from: tuple[str, ...] = ()


@dataclass(frozen=True)
class NetworkConfig:
    """The whole overlay network config (DC/OS ``NetworkConfig``)."""

    vtep_subnet: IPv4Network
    vtep_mac_oui: str
    overlays: tuple[OverlayConfig, ...]
    vtep_subnet6: IPv6Network | None = None
    vtep_mtu: int | None = None

    def overlay(self, name: str) -> OverlayConfig | None:
        for overlay in self.overlays:
            if overlay.name == name:
                return overlay
        return None

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(o.name for o in self.overlays)


def to_plain(net: NetworkConfig) -> dict[str, Any]:
    """The canonical plain-data form (used in the Raft log and in ``/state``'s ``network``)."""
    plain: dict[str, Any] = {
        "overlays": [_overlay_to_plain(o) for o in net.overlays],
        "vtep_mac_oui": net.vtep_mac_oui,
        "vtep_subnet": str(net.vtep_subnet),
    }
    if net.vtep_subnet6 is not None:
        plain["vtep_subnet6"] = str(net.vtep_subnet6)
    if net.vtep_mtu is not None:
        plain["vtep_mtu"] = net.vtep_mtu
    return plain


def _overlay_to_plain(overlay: OverlayConfig) -> dict[str, Any]:
    plain: dict[str, Any] = {"enabled": overlay.enabled, "name": overlay.name}
    if overlay.subnet is not None:
        plain["prefix"] = overlay.prefix
        plain["subnet"] = str(overlay.subnet)
    if overlay.subnet6 is not None:
        plain["prefix6"] = overlay.prefix6
        plain["subnet6"] = str(overlay.subnet6)
    if overlay.allow_from:  # left out when empty: the default document stays DC/OS's
        plain["allow_from"] = list(overlay.allow_from)
    return plain


def capacity_summary(net: NetworkConfig) -> list[str]:
    """One line per network: how many agents fit, and containers per agent per bridge half."""
    vteps = net.vtep_subnet.num_addresses - 2
    lines = [f"vtep_subnet {net.vtep_subnet}: {vteps} VTEP addresses (agents and masters)"]
    for o in net.overlays:
        parts: list[str] = []
        if o.subnet is not None and o.prefix is not None:
            blocks = 1 << (o.prefix - o.subnet.prefixlen)
            per_half = max((1 << (32 - o.prefix - 1)) - 3, 0)
            parts.append(
                f"{o.subnet} in /{o.prefix} blocks: {min(blocks, vteps)} agents fit "
                f"({blocks} blocks), {per_half} Mesos + {per_half} Docker containers per agent"
            )
        if o.subnet6 is not None and o.prefix6 is not None:
            blocks6 = 1 << (o.prefix6 - o.subnet6.prefixlen)
            parts.append(f"{o.subnet6} in /{o.prefix6} blocks: {min(blocks6, vteps)} agents fit")
        state = "" if o.enabled else " (disabled)"
        lines.append(f"{o.name}{state}: " + "; ".join(parts))
    return lines
