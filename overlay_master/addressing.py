"""Pure address arithmetic: numbered slots <-> VTEP addresses, MACs, agent blocks, bridge halves.

Every allocation is a small integer (a slot of a ``pool.Pool``); these functions turn slots into
the addresses DC/OS would hand out, so the allocator never walks address ranges.
"""

from __future__ import annotations

import ipaddress
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network

VNI = 1024
VTEP_NAME = "vtep1024"

Net = IPv4Network | IPv6Network


def vtep_pool_size(vtep_subnet: Net) -> int:
    """Usable VTEP addresses: the open range (network, broadcast), as in DC/OS."""
    return max(vtep_subnet.num_addresses - 2, 0)


def vtep_address(vtep_subnet: Net, slot: int) -> IPv4Address | IPv6Address:
    """Slot 0 is the first address after the network address."""
    return ipaddress.ip_address(int(vtep_subnet.network_address) + 1 + slot)


def vtep_interface(vtep_subnet: Net, slot: int) -> str:
    """The VTEP address written the DC/OS way: ``44.128.0.1/20``."""
    return f"{vtep_address(vtep_subnet, slot)}/{vtep_subnet.prefixlen}"


def vtep_mac(oui: str, vtep_ip: IPv4Address) -> str:
    """OUI's first three bytes + the low 24 bits of the VTEP IPv4, lower case (DC/OS formula)."""
    head = [int(part, 16) for part in oui.split(":")[:3]]
    low = int(vtep_ip) & 0xFFFFFF
    octets = [*head, (low >> 16) & 0xFF, (low >> 8) & 0xFF, low & 0xFF]
    return ":".join(f"{o:02x}" for o in octets)


def block_pool_size(subnet: Net, prefix: int) -> int:
    """How many ``/prefix`` agent blocks the overlay holds; the first and the last are usable."""
    return 1 << (prefix - subnet.prefixlen)


def block(subnet: Net, prefix: int, slot: int) -> Net:
    """The ``slot``-th ``/prefix`` block of ``subnet``."""
    size = 1 << (subnet.max_prefixlen - prefix)
    return ipaddress.ip_network((int(subnet.network_address) + slot * size, prefix))


def halves(net: Net) -> tuple[Net, Net]:
    """Lower half (the Mesos bridge ``m-<name>``) and upper half (the Docker bridge ``d-<name>``)."""
    lower, upper = net.subnets(prefixlen_diff=1)
    return lower, upper
