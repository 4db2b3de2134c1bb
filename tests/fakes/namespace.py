"""An in-memory network namespace for the agent's tests: the kernel tables a reconcile pass
changes (links and their IPv4 and IPv6 addresses, the main routing table of both families, ARP
and NDP neighbours, VXLAN FDB entries, the forwarding sysctls), changed by calls named after the
``ip``/``bridge`` commands and refused with the errno rtnetlink gives. ``tests/fakes/kernel.py``
drives it as ``netlink.Kernel`` drives a real namespace; tests also call it directly to make
drift "by hand". IPv6 link-local addresses (the kernel's own, never observed) are not modelled.

The rules (tests/netns/test_agent_fake_kernel.py checks them against a real kernel):
- link names are unique (EEXIST) and at most 15 characters (EINVAL); MTU 68..65535 (EINVAL); a
  missing link is ENODEV;
- an IPv4 address is unique on its link with its prefix length, an IPv6 address by itself
  (EEXIST); deleting a missing one is EADDRNOTAVAIL; deleting the primary IPv4 address of a
  subnet deletes its secondaries; deleting the last IPv4 address of a link drops every IPv4
  route through it and its ARP neighbours (the kernel disables IPv4 on the link; IPv6 stays);
  deleting an IPv6 address drops nothing else (its prefix route is not modelled);
- setting a link down drops every route through it and its neighbours, of both families, and
  its IPv6 addresses (``keep_addr_on_down`` is 0); deleting a link drops its addresses, routes,
  neighbours and FDB;
- an IPv4 route needs its device (ENODEV) and a gateway inside a subnet of that device while it
  is up (ENETUNREACH, "Nexthop has invalid gateway"); an IPv6 route the same, refused with
  EHOSTUNREACH (the gateway has no route); "replace" takes the place of any route to the same
  destination; deleting a route that is not there is ESRCH;
- neighbours and FDB entries need their device (ENODEV); deleting a missing one is ENOENT; a
  unicast MAC has one remote ("replace" overwrites it), and deleting it with another remote
  succeeds and changes nothing.
"""

from __future__ import annotations

import errno
import os
import threading
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Interface

from overlay_agent.desired import Address, Interface, Network
from overlay_agent.observed import (
    OWNER_ALIAS,
    ROUTE_PROTO,
    ObservedLink,
    ObservedNeighbour,
    ObservedNet,
    ObservedRoute,
    VxlanParams,
)
from overlay_wire.contract import IFNAME_MAX, VTEP_NAME, is_bridge_name

MIN_MTU, MAX_MTU = 68, 65535
INVALID_GATEWAY = "Nexthop has invalid gateway"
UNDERLAY = "eth0"


class NetlinkFault(OSError):
    """The kernel refused a request: ``errno`` and its extended-ack text (may be empty)."""

    def __init__(self, code: int, message: str = "") -> None:
        super().__init__(code, os.strerror(code))
        self.code = code
        self.message = message

    def __str__(self) -> str:  # as pyroute2's NetlinkError prints itself
        return f"({self.code}, {self.strerror!r})"


@dataclass
class Link:
    index: int
    name: str
    kind: str
    mtu: int
    mac: str
    up: bool = False
    alias: str = ""
    vxlan: VxlanParams | None = None
    addresses: list[Interface] = field(default_factory=list)  # in the order added

    def of(self, version: int) -> list[Interface]:
        return [a for a in self.addresses if a.version == version]


@dataclass(frozen=True)
class Route:
    dst: Network
    via: Address | None
    oif: int
    protocol: int


class Namespace:
    """The kernel tables of one network namespace. Thread-safe (tests change it under a pass)."""

    def __init__(self, underlay: IPv4Interface | None = None, underlay_mtu: int = 1500) -> None:
        self.links: dict[int, Link] = {}
        self.routes: dict[Network, Route] = {}  # the main table, connected routes left out
        self.neighbours: dict[tuple[int, Address], tuple[str, bool]] = {}  # -> (MAC, perm.)
        self.fdb: dict[tuple[int, str], IPv4Address] = {}  # (device, MAC) -> remote
        self.forwarding = False
        self.forwarding6 = False
        self.lock = threading.RLock()
        self._next_index = 1
        self.link_add("lo", "loopback", mtu=MAX_MTU)
        self.link_set("lo", up=True)
        if underlay is not None:
            self.link_add(UNDERLAY, "veth", mtu=underlay_mtu)
            self.addr_add(UNDERLAY, underlay)
            self.link_set(UNDERLAY, up=True)

    # -- links -------------------------------------------------------------------------------

    def link(self, name: str) -> Link:
        with self.lock:
            found = next((li for li in self.links.values() if li.name == name), None)
            if found is None:
                raise NetlinkFault(errno.ENODEV)
            return found

    def find(self, name: str) -> Link | None:
        with self.lock:
            return next((li for li in self.links.values() if li.name == name), None)

    def link_add(
        self,
        name: str,
        kind: str,
        mtu: int = 1500,
        mac: str | None = None,
        vxlan: VxlanParams | None = None,
    ) -> Link:
        with self.lock:
            if not 0 < len(name) <= IFNAME_MAX:
                raise NetlinkFault(errno.EINVAL, "Attribute failed policy validation")
            if self.find(name) is not None:
                raise NetlinkFault(errno.EEXIST)
            _check_mtu(mtu)
            index = self._next_index
            self._next_index += 1
            link = Link(index, name, kind, mtu, (mac or _mac(index)).lower(), vxlan=vxlan)
            self.links[index] = link
            return link

    def link_set(
        self, name: str, mtu: int | None = None, up: bool | None = None, alias: str | None = None
    ) -> None:
        with self.lock:
            link = self.link(name)
            if mtu is not None:
                _check_mtu(mtu)
                link.mtu = mtu
            if alias is not None:
                link.alias = alias
            if up is not None and up != link.up:
                link.up = up
                if not up:
                    link.addresses = link.of(4)
                    self._disable_ip(link, 4)
                    self._disable_ip(link, 6)

    def link_del(self, name: str) -> None:
        with self.lock:
            link = self.link(name)
            self._disable_ip(link, 4)
            self._disable_ip(link, 6)
            self.fdb = {k: v for k, v in self.fdb.items() if k[0] != link.index}
            del self.links[link.index]

    # -- addresses ---------------------------------------------------------------------------

    def addr_add(self, name: str, address: Interface) -> None:
        with self.lock:
            link = self.link(name)
            if address in link.addresses or (
                address.version == 6 and address.ip in {a.ip for a in link.of(6)}
            ):
                raise NetlinkFault(errno.EEXIST)
            link.addresses.append(address)

    def addr_del(self, name: str, address: Interface) -> None:
        with self.lock:
            link = self.link(name)
            if address not in link.addresses:
                family = "ipv4: Address" if address.version == 4 else "ipv6: address"
                raise NetlinkFault(errno.EADDRNOTAVAIL, f"{family} not found")
            if address.version == 6:
                link.addresses.remove(address)
                return
            primary = next(a for a in link.of(4) if a.network == address.network)
            if primary == address:  # promote_secondaries off: the subnet's secondaries go too
                link.addresses = [a for a in link.addresses if a.network != address.network]
            else:
                link.addresses.remove(address)
            if not link.of(4):
                self._disable_ip(link, 4)

    def _disable_ip(self, link: Link, version: int) -> None:
        """What the kernel does when a link goes down (both families) or loses its last IPv4
        address (IPv4 only): routes through it and its neighbours of that family go."""
        self.routes = {
            d: r for d, r in self.routes.items() if r.oif != link.index or d.version != version
        }
        self.neighbours = {
            k: v
            for k, v in self.neighbours.items()
            if k[0] != link.index or k[1].version != version
        }

    # -- routes, neighbours, FDB -------------------------------------------------------------

    def route_replace(
        self, dst: Network, via: Address, oif: int, protocol: int = ROUTE_PROTO
    ) -> None:
        with self.lock:
            link = self.links.get(oif)
            if link is None:
                raise NetlinkFault(errno.ENODEV)
            if not link.up or not any(via in a.network for a in link.of(via.version)):
                if via.version == 6:
                    raise NetlinkFault(errno.EHOSTUNREACH)
                raise NetlinkFault(errno.ENETUNREACH, INVALID_GATEWAY)
            self.routes[dst] = Route(dst, via, oif, protocol)

    def route_del(self, dst: Network, protocol: int | None = None) -> None:
        with self.lock:
            route = self.routes.get(dst)
            if route is None or (protocol is not None and route.protocol != protocol):
                raise NetlinkFault(errno.ESRCH)
            del self.routes[dst]

    def neigh_replace(self, oif: int, ip: Address, mac: str) -> None:
        with self.lock:
            self._device(oif)
            self.neighbours[oif, ip] = (mac.lower(), True)

    def neigh_del(self, oif: int, ip: Address) -> None:
        with self.lock:
            self._device(oif)
            if self.neighbours.pop((oif, ip), None) is None:
                raise NetlinkFault(errno.ENOENT)

    def fdb_replace(self, oif: int, mac: str, dst: IPv4Address) -> None:
        with self.lock:
            self._device(oif)
            self.fdb[oif, mac.lower()] = dst

    def fdb_del(self, oif: int, mac: str, dst: IPv4Address) -> None:
        with self.lock:
            self._device(oif)
            key = (oif, mac.lower())
            if key not in self.fdb:
                raise NetlinkFault(errno.ENOENT)
            if self.fdb[key] == dst:  # another remote: the kernel answers 0 and keeps the entry
                del self.fdb[key]

    def _device(self, index: int) -> Link:
        link = self.links.get(index)
        if link is None:
            raise NetlinkFault(errno.ENODEV)
        return link

    # -- observation -------------------------------------------------------------------------

    def observe(self, underlay_ip: IPv4Address) -> ObservedNet:
        """What ``netlink.Kernel.observe`` reports for these tables."""
        with self.lock:
            links = [_observed(li) for li in self.links.values()]
            vtep = next((li for li in links if li.name == VTEP_NAME), None)
            index = vtep.index if vtep is not None else None
            underlay = next(
                (li for li in links if any(a.ip == underlay_ip for a in li.addresses)), None
            )
            return ObservedNet(
                vtep=vtep,
                bridges=frozenset(
                    li for li in links if li.kind == "bridge" and is_bridge_name(li.name)
                ),
                neighbours=frozenset(
                    ObservedNeighbour(ip, mac, permanent)
                    for (oif, ip), (mac, permanent) in self.neighbours.items()
                    if oif == index
                ),
                fdb=frozenset((mac, dst) for (oif, mac), dst in self.fdb.items() if oif == index),
                routes=frozenset(
                    ObservedRoute(r.dst, r.via, r.oif)
                    for r in self.routes.values()
                    if r.protocol == ROUTE_PROTO
                ),
                forwarding=self.forwarding,
                underlay_mtu=underlay.mtu if underlay is not None else None,
                forwarding6=self.forwarding6,
            )


def _observed(link: Link) -> ObservedLink:
    return ObservedLink(
        name=link.name,
        index=link.index,
        kind=link.kind,
        up=link.up,
        mtu=link.mtu,
        mac=link.mac,
        owned=link.alias == OWNER_ALIAS,
        addresses=frozenset(link.addresses),
        vxlan=link.vxlan,
    )


def _check_mtu(mtu: int) -> None:
    if not MIN_MTU <= mtu <= MAX_MTU:
        raise NetlinkFault(errno.EINVAL, "mtu out of range")


def _mac(index: int) -> str:
    return f"02:00:00:00:{index >> 8 & 0xFF:02x}:{index & 0xFF:02x}"
