"""PURE value types: what ``netlink.observe()`` saw in the namespace, limited to what we own or
must look at (our VXLAN device, ``m-``/``d-`` bridges, entries on the VXLAN device, routes
carrying our protocol number, IP forwarding, the underlay interface's MTU). Both families;
IPv6 link-local addresses (the kernel's own) are left out."""

from __future__ import annotations

from dataclasses import dataclass, field
from ipaddress import IPv4Address

from overlay_agent.kernel_objects import Address, Interface, Network, address_key, net_key

OWNER_ALIAS = "overlay-agent"  # ifalias on links we created (or adopted): only those are removed
ROUTE_PROTO = 211  # rtm_protocol on our routes: only those are ever changed or removed


@dataclass(frozen=True)
class VxlanParams:
    vni: int
    port: int
    learning: bool


@dataclass(frozen=True)
class ObservedLink:
    name: str
    index: int
    kind: str
    up: bool
    mtu: int
    mac: str
    owned: bool  # carries OWNER_ALIAS
    addresses: frozenset[Interface]  # global scope only (no IPv6 link-local)
    vxlan: VxlanParams | None = None


@dataclass(frozen=True, eq=False, slots=True)
class ObservedNeighbour:
    ip: Address
    mac: str
    permanent: bool
    key: tuple[int, int] = field(init=False, repr=False)

    def __post_init__(self) -> None:  # as Neighbour's: how plan compares them
        object.__setattr__(self, "key", address_key(self.ip))

    def __eq__(self, other: object) -> bool:
        if type(other) is not ObservedNeighbour:
            return NotImplemented
        return (self.key, self.mac, self.permanent) == (other.key, other.mac, other.permanent)

    def __hash__(self) -> int:
        return hash((self.key, self.mac, self.permanent))


@dataclass(frozen=True, eq=False, slots=True)
class ObservedRoute:
    dst: Network
    via: Address | None
    oif: int | None
    # As Route's (how plan compares them); the gateway -1 when there is none.
    key: tuple[int, int, int, int] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        via = int(self.via) if self.via is not None else -1
        object.__setattr__(self, "key", (*net_key(self.dst), via))

    def __eq__(self, other: object) -> bool:
        if type(other) is not ObservedRoute:
            return NotImplemented
        return (self.key, self.oif) == (other.key, other.oif)

    def __hash__(self) -> int:
        return hash((self.key, self.oif))


@dataclass(frozen=True)
class ObservedNet:
    vtep: ObservedLink | None
    bridges: frozenset[ObservedLink]  # kind bridge, named m-* or d-*
    neighbours: frozenset[ObservedNeighbour]  # IPv4 and IPv6 entries on the VXLAN device
    fdb: frozenset[tuple[str, IPv4Address]]  # (MAC, remote) self entries on the VXLAN device
    routes: frozenset[ObservedRoute]  # main table, protocol ROUTE_PROTO, both families
    forwarding: bool  # net.ipv4.ip_forward
    underlay_mtu: int | None
    forwarding6: bool = False  # net.ipv6.conf.all.forwarding

    def bridge(self, name: str) -> ObservedLink | None:
        return next((b for b in self.bridges if b.name == name), None)
