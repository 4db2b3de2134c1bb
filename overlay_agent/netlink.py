"""The agent's kernel edge: ``Kernel.observe()`` and ``Kernel.apply_all(ops)`` (the only module
importing pyroute2, and the only user of ``netlink_bulk`` and ``rtnetlink``).

A ``Kernel`` programs one network namespace (``--netns``) or, without one, the namespace the
agent runs in. It is not thread-safe: the reconciler drives it from a single worker thread (which
also lets the sysctl helpers switch that thread into the namespace and back).
Two channels: links, addresses and the sysctl (a handful of objects) through pyroute2, one
operation at a time; neighbours, FDB entries and routes (three per peer, thousands at scale)
through ``netlink_bulk``: kernel-filtered dumps, and each run of consecutive peer operations sent
in chunks, still in plan order, with one result per operation. Every message sent counts as one
write, so a pass with an empty plan writes nothing.
Only named errno values are tolerated, each where a repeated operation is harmless (deleting what
is already gone, adding an address that is already there).
IPv6: our addresses are added with ``nodad`` (the agent owns them; duplicate address detection
would leave them tentative, unusable as a route's gateway or a bridge's source for a second or,
on a bridge without ports, until one is attached); link-local addresses are the kernel's and are
not observed. Forwarding is a sysctl per family.
"""

from __future__ import annotations

import errno
import os
import socket
from collections.abc import Callable, Sequence
from ipaddress import IPv4Address, ip_interface
from pathlib import Path
from typing import Any, assert_never

from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError

from overlay_agent import netlink_bulk as bulk
from overlay_agent import rtnetlink as rt
from overlay_agent.desired import Interface
from overlay_agent.errors import KernelError
from overlay_agent.netns import NETNS_DIR, inside
from overlay_agent.observed import (
    OWNER_ALIAS,
    ROUTE_PROTO,
    ObservedLink,
    ObservedNet,
    VxlanParams,
)
from overlay_agent.plan import (
    AddAddress,
    CreateBridge,
    CreateVtep,
    DeleteAddress,
    DeleteFdb,
    DeleteLink,
    DeleteNeighbour,
    DeleteRoute,
    EnableForwarding,
    Operation,
    ReplaceFdb,
    ReplaceNeighbour,
    ReplaceRoute,
    SetLink,
    describe,
)
from overlay_wire.contract import VTEP_NAME, is_bridge_name

MAIN_TABLE = 254
IFF_UP = 0x1
FORWARDING = {4: "/proc/sys/net/ipv4/ip_forward", 6: "/proc/sys/net/ipv6/conf/all/forwarding"}
IFA_F_NODAD = 0x02
RT_SCOPE_UNIVERSE = 0


class Kernel:
    """Observe and change the objects the agent owns in one namespace."""

    def __init__(self, netns: str | None, underlay_ip: IPv4Address) -> None:
        if netns is not None and not (NETNS_DIR / netns).exists():
            # IPRoute(netns=...) would silently create a missing namespace: refuse instead.
            raise KernelError(f"network namespace {netns!r} does not exist")
        self.netns = netns
        self.underlay_ip = underlay_ip
        self.writes = 0
        try:
            self._ipr = IPRoute(netns=netns) if netns else IPRoute()
        except OSError as e:
            raise KernelError(f"opening netlink in namespace {netns!r}") from e
        try:
            with inside(netns):
                self._peers = bulk.PeerTable(bulk.open_socket())
        except OSError as e:
            self._ipr.close()
            raise KernelError(f"opening netlink in namespace {netns!r}") from e

    def close(self) -> None:
        self._peers.close()
        self._ipr.close()

    # -- observe -----------------------------------------------------------------------------

    def observe(self) -> ObservedNet:
        try:
            return self._observe()
        except (NetlinkError, OSError) as e:
            raise KernelError(f"observing namespace {self.netns or '(own)'}") from e

    def _observe(self) -> ObservedNet:
        addresses = self._addresses()
        links = [self._link(raw, addresses) for raw in self._ipr.get_links()]
        vtep = next((li for li in links if li.name == VTEP_NAME), None)
        bridges = frozenset(li for li in links if li.kind == "bridge" and is_bridge_name(li.name))
        underlay = next(
            (li for li in links if any(self.underlay_ip == a.ip for a in li.addresses)), None
        )
        return ObservedNet(
            vtep=vtep,
            bridges=bridges,
            neighbours=self._peers.neighbours(vtep.index) if vtep else frozenset(),
            fdb=self._peers.fdb(vtep.index) if vtep else frozenset(),
            routes=self._peers.routes(MAIN_TABLE, ROUTE_PROTO),
            forwarding=self._read_sysctl(FORWARDING[4]) == "1",
            underlay_mtu=underlay.mtu if underlay else None,
            forwarding6=self._forwarding6(),
        )

    def _forwarding6(self) -> bool:
        """IPv6 forwarding; False where the kernel has IPv6 turned off (no sysctl at all)."""
        try:
            return self._read_sysctl(FORWARDING[6]) == "1"
        except FileNotFoundError:
            return False

    def _addresses(self) -> dict[int, set[Interface]]:
        """Addresses of global scope per link: IPv6 link-local ones are the kernel's own."""
        found: dict[int, set[Interface]] = {}
        for raw in self._ipr.get_addr():
            if raw["family"] not in (socket.AF_INET, socket.AF_INET6):
                continue
            if raw["family"] == socket.AF_INET6 and raw["scope"] != RT_SCOPE_UNIVERSE:
                continue
            local = raw.get("IFA_LOCAL") or raw.get("IFA_ADDRESS")
            if local:
                found.setdefault(raw["index"], set()).add(
                    ip_interface(f"{local}/{raw['prefixlen']}")
                )
        return found

    @staticmethod
    def _link(raw: Any, addresses: dict[int, set[Interface]]) -> ObservedLink:
        info = raw.get("IFLA_LINKINFO")
        kind = (info.get("IFLA_INFO_KIND") if info else None) or ""
        vxlan = None
        if kind == "vxlan":
            data = info.get("IFLA_INFO_DATA")
            vxlan = VxlanParams(
                vni=int(data.get("IFLA_VXLAN_ID") or 0),
                port=int(data.get("IFLA_VXLAN_PORT") or 0),
                learning=bool(data.get("IFLA_VXLAN_LEARNING")),
            )
        return ObservedLink(
            name=raw.get("IFLA_IFNAME"),
            index=raw["index"],
            kind=kind,
            up=bool(raw["flags"] & IFF_UP),
            mtu=int(raw.get("IFLA_MTU") or 0),
            mac=str(raw.get("IFLA_ADDRESS") or "").lower(),
            owned=raw.get("IFLA_IFALIAS") == OWNER_ALIAS,
            addresses=frozenset(addresses.get(raw["index"], set())),
            vxlan=vxlan,
        )

    # -- apply -------------------------------------------------------------------------------

    def apply_all(self, ops: Sequence[Operation]) -> list[tuple[Operation, KernelError]]:
        """Apply ``ops`` in order; every one is tried. Returns the refused ones with the reason.

        Each run of per-peer operations (neighbours, FDB entries, routes: thousands at scale)
        goes to the kernel in bulk; links, addresses and sysctls one by one through pyroute2.
        """
        failures: list[tuple[Operation, KernelError]] = []
        run: list[PeerOperation] = []
        for op in ops:
            if isinstance(op, PeerOperation):
                run.append(op)
                continue
            failures += self._apply_peers(run)
            run = []
            try:
                self._apply_one(op)
            except (NetlinkError, OSError, KernelError) as e:
                failures.append((op, _failure(op, e)))
        return failures + self._apply_peers(run)

    def _apply_one(self, op: Operation) -> None:
        handlers: dict[type, Callable[[Any], None]] = {
            DeleteAddress: self._delete_address,
            DeleteLink: self._delete_link,
            CreateVtep: self._create_vtep,
            CreateBridge: self._create_bridge,
            SetLink: lambda o: self._set_link(o.name, o.mtu, o.up, o.tag),
            AddAddress: self._add_address,
            EnableForwarding: self._enable_forwarding,
        }
        handlers[type(op)](op)

    def _apply_peers(self, ops: list[PeerOperation]) -> list[tuple[Operation, KernelError]]:
        if not ops:
            return []
        try:
            vtep = self._find(VTEP_NAME)
        except (NetlinkError, OSError) as e:
            return [(op, _failure(op, e)) for op in ops]
        missing = KernelError(f"link {VTEP_NAME} does not exist")
        failures: list[tuple[Operation, KernelError]] = []
        sendable = []
        for op in ops:
            if vtep is None and not isinstance(op, DeleteRoute):
                failures.append((op, _failure(op, missing)))
            else:
                sendable.append(op)
        try:
            results = self._peers.write([_request(op, vtep or 0) for op in sendable])
        except OSError as e:
            return failures + [(op, _failure(op, e)) for op in sendable]
        finally:
            self.writes += len(sendable)
        for op, (code, message) in zip(sendable, results, strict=True):
            if code and code not in _TOLERATED.get(type(op), ()):
                failures.append((op, KernelError(f"{describe(op)}: {os.strerror(code)}{message}")))
        return failures

    def _delete_address(self, op: DeleteAddress) -> None:
        self._tolerate(
            (errno.EADDRNOTAVAIL,),
            self._ipr.addr,
            "del",
            index=self._index(op.link),
            address=str(op.address.ip),
            prefixlen=op.address.network.prefixlen,
        )

    def _delete_link(self, op: DeleteLink) -> None:
        index = self._find(op.name)
        if index is not None:
            self._tolerate((errno.ENODEV,), self._ipr.link, "del", index=index)

    def _create_vtep(self, op: CreateVtep) -> None:
        v = op.vtep
        self._write(
            self._ipr.link,
            "add",
            ifname=v.name,
            kind="vxlan",
            vxlan_id=v.vni,
            vxlan_port=v.port,
            vxlan_learning=0,
            address=v.mac,
            mtu=v.mtu,
        )
        # The ifalias is not taken at creation (pyroute2 0.9), so it is set with "up".
        self._set_link(v.name, None, up=True, tag=True)

    def _create_bridge(self, op: CreateBridge) -> None:
        b = op.bridge
        self._write(self._ipr.link, "add", ifname=b.name, kind="bridge", mtu=b.mtu)
        self._set_link(b.name, None, up=True, tag=True)

    def _add_address(self, op: AddAddress) -> None:
        nodad = {"flags": IFA_F_NODAD} if op.address.version == 6 else {}
        self._tolerate(
            (errno.EEXIST,),
            self._ipr.addr,
            "add",
            index=self._index(op.link),
            address=str(op.address.ip),
            prefixlen=op.address.network.prefixlen,
            **nodad,
        )

    def _enable_forwarding(self, op: EnableForwarding) -> None:
        self.writes += 1
        self._write_sysctl(FORWARDING[op.version], "1")

    def _set_link(self, name: str, mtu: int | None, up: bool, tag: bool) -> None:
        changes: dict[str, Any] = {}
        if mtu is not None:
            changes["mtu"] = mtu
        if up:
            changes["state"] = "up"
        if tag:
            changes["ifalias"] = OWNER_ALIAS
        if changes:
            self._write(self._ipr.link, "set", index=self._index(name), **changes)

    def _write(self, call: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        self.writes += 1
        call(*args, **kwargs)

    def _tolerate(
        self, codes: tuple[int, ...], call: Callable[..., Any], *args: Any, **kwargs: Any
    ) -> None:
        try:
            self._write(call, *args, **kwargs)
        except NetlinkError as e:
            if e.code not in codes:
                raise

    def _find(self, name: str) -> int | None:
        found = self._ipr.link_lookup(ifname=name)
        return int(found[0]) if found else None

    def _index(self, name: str) -> int:
        index = self._find(name)
        if index is None:
            raise KernelError(f"link {name} does not exist")
        return index

    # -- sysctl ------------------------------------------------------------------------------

    def _read_sysctl(self, path: str) -> str:
        with inside(self.netns):
            return Path(path).read_text().strip()

    def _write_sysctl(self, path: str, value: str) -> None:
        with inside(self.netns):
            Path(path).write_text(value)


PeerOperation = (
    DeleteRoute | DeleteNeighbour | DeleteFdb | ReplaceFdb | ReplaceNeighbour | ReplaceRoute
)

# Repeating these is harmless: what they delete is already gone.
_TOLERATED: dict[type, tuple[int, ...]] = {
    DeleteRoute: (errno.ESRCH, errno.ENOENT),
    DeleteNeighbour: (errno.ENOENT,),
    DeleteFdb: (errno.ENOENT,),
}


def _request(op: PeerOperation, vtep: int) -> rt.Request:
    match op:
        case ReplaceFdb(e):
            return rt.replace_fdb(vtep, e.mac, e.dst)
        case ReplaceNeighbour(n):
            return rt.replace_neighbour(vtep, n.ip, n.mac)
        case ReplaceRoute(r):
            return rt.replace_route(r.dst, r.via, vtep, MAIN_TABLE, ROUTE_PROTO)
        case DeleteRoute(r):
            return rt.delete_route(r.dst, MAIN_TABLE, ROUTE_PROTO)
        case DeleteNeighbour(ip):
            return rt.delete_neighbour(vtep, ip)
        case DeleteFdb(mac, dst):
            return rt.delete_fdb(vtep, mac, dst)
        case _:
            assert_never(op)


def _failure(op: Operation, e: Exception) -> KernelError:
    """``e`` as a ``KernelError`` naming the operation it stopped."""
    error = KernelError(f"{describe(op)}: {e}")
    error.__cause__ = e
    return error
