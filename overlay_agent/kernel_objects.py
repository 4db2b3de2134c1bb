"""PURE value types: the kernel objects an agent wants (``desired`` builds them, ``plan``
compares them with what ``observed`` saw). Both address families: a bridge or VTEP has an IPv4
and/or an IPv6 address; neighbours and routes are of either family."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from ipaddress import (
    IPv4Address,
    IPv4Interface,
    IPv4Network,
    IPv6Address,
    IPv6Interface,
    IPv6Network,
)
from typing import Any

Address = IPv4Address | IPv6Address
Interface = IPv4Interface | IPv6Interface
Network = IPv4Network | IPv6Network


@dataclass(frozen=True)
class Vtep:
    name: str
    vni: int
    port: int
    mac: str
    address: IPv4Interface
    mtu: int
    address6: IPv6Interface | None = None

    @property
    def addresses(self) -> tuple[Interface, ...]:
        return (self.address,) if self.address6 is None else (self.address, self.address6)


@dataclass(frozen=True)
class Bridge:
    name: str
    overlay: str
    gateway: IPv4Interface | None  # first host of the half, with the half's prefix length
    mtu: int
    gateway6: IPv6Interface | None = None  # the same in the IPv6 half

    @property
    def subnet(self) -> IPv4Network | None:
        return self.gateway.network if self.gateway is not None else None

    @property
    def subnet6(self) -> IPv6Network | None:
        return self.gateway6.network if self.gateway6 is not None else None

    @property
    def addresses(self) -> tuple[Interface, ...]:
        return tuple(a for a in (self.gateway, self.gateway6) if a is not None)


def net_key(net: Network) -> tuple[int, int, int]:
    """(IP version, address, prefix length): sorts like ``ipaddress`` within a family, IPv4
    first, and hashes and compares as plain integers. ``ipaddress`` objects hash and compare in
    Python, and hash the IPv6 blocks of one overlay alike in their low bits (a set of thousands
    of them degrades to linear probing): per-peer objects are compared and hashed by these keys
    instead (``Neighbour``, ``Route`` and their observed twins in ``observed``)."""
    return net.version, int(net.network_address), net.prefixlen


def address_key(ip: Address) -> tuple[int, int]:
    """(IP version, address), as ``net_key``."""
    return ip.version, int(ip)


@dataclass(frozen=True, eq=False, slots=True)
class Neighbour:
    ip: Address
    mac: str
    key: tuple[int, int] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "key", address_key(self.ip))

    def __eq__(self, other: object) -> bool:
        if type(other) is not Neighbour:
            return NotImplemented
        return self.key == other.key and self.mac == other.mac

    def __hash__(self) -> int:
        return hash((self.key, self.mac))


@dataclass(frozen=True)
class FdbEntry:
    mac: str
    dst: IPv4Address


@dataclass(frozen=True, eq=False, slots=True)
class Route:
    dst: Network
    via: Address  # of the same family as dst
    # (version, destination, prefix length, gateway)
    key: tuple[int, int, int, int] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "key", (*net_key(self.dst), int(self.via)))

    def __eq__(self, other: object) -> bool:
        if type(other) is not Route:
            return NotImplemented
        return self.key == other.key

    def __hash__(self) -> int:
        return hash(self.key)


@dataclass(frozen=True)
class Masquerade:
    """Masquerade traffic from ``sources`` unless it goes to one of ``overlays`` (both families;
    IPv6 is handled like IPv4, see README "Dual stack")."""

    sources: frozenset[Network]
    overlays: frozenset[Network]


@dataclass(frozen=True)
class LocalOverlay:
    """One overlay this agent is a member of, as the master allocated it."""

    name: str
    subnet: IPv4Network | None
    mesos_bridge: Bridge | None
    docker_bridge: Bridge | None
    record: Mapping[str, Any] = field(compare=False, hash=False, repr=False)
    subnet6: IPv6Network | None = None
