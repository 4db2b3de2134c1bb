"""Pure address arithmetic: numbered slots <-> VTEP addresses, MACs, agent blocks, bridge halves.

Every allocation is a small integer (a slot of a ``pool.Pool``); these functions turn slots into
the addresses DC/OS would hand out, so the allocator never walks address ranges.
"""

from __future__ import annotations

from functools import lru_cache
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network

Net = IPv4Network | IPv6Network


def vtep_pool_size(vtep_subnet: Net) -> int:
    """Usable VTEP addresses: the open range (network, broadcast), as in DC/OS."""
    return max(vtep_subnet.num_addresses - 2, 0)


def vtep_interface(vtep_subnet: Net, slot: int) -> str:
    """The VTEP address written the DC/OS way: ``44.128.0.1/20``."""
    return (
        f"{_text(vtep_subnet, int(vtep_subnet.network_address) + 1 + slot)}/{vtep_subnet.prefixlen}"
    )


def vtep_mac(oui: str, vtep_ip: IPv4Address) -> str:
    """OUI's first three bytes + the low 24 bits of the VTEP IPv4, lower case (DC/OS formula)."""
    low = int(vtep_ip) & 0xFFFFFF
    return f"{_oui_head(oui)}:{low >> 16:02x}:{(low >> 8) & 0xFF:02x}:{low & 0xFF:02x}"


def vtep_mac_of_slot(oui: str, vtep_subnet: IPv4Network, slot: int) -> str:
    return vtep_mac(oui, IPv4Address(int(vtep_subnet.network_address) + 1 + slot))


@lru_cache(maxsize=16)
def _oui_head(oui: str) -> str:
    return ":".join(f"{int(part, 16):02x}" for part in oui.split(":")[:3])


def _text(space: Net, value: int) -> str:
    """Address text; IPv4 without ``ipaddress`` objects (hot path), IPv6 compressed as glibc."""
    if space.version == 4:
        return f"{value >> 24}.{(value >> 16) & 255}.{(value >> 8) & 255}.{value & 255}"
    return str(IPv6Address(value))


def block_pool_size(subnet: Net, prefix: int) -> int:
    """How many ``/prefix`` agent blocks the overlay holds; the first and the last are usable."""
    return 1 << (prefix - subnet.prefixlen)


def block_text(subnet: Net, prefix: int, slot: int) -> str:
    """The ``slot``-th ``/prefix`` block of ``subnet``, as text (no network object: hot path)."""
    size = 1 << (subnet.max_prefixlen - prefix)
    return f"{_text(subnet, int(subnet.network_address) + slot * size)}/{prefix}"


def halves(net: Net) -> tuple[Net, Net]:
    """Lower half (the Mesos bridge ``m-<name>``) and upper half (the Docker bridge ``d-<name>``)."""
    lower, upper = net.subnets(prefixlen_diff=1)
    return lower, upper
