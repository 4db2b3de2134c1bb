"""An in-memory ``KernelEdge`` for the agent's tests: ``observe()`` and ``apply_all(ops)`` over a
``Namespace`` (tests/fakes/namespace.py, the kernel's rules) with the channels, tolerated errno
values, error texts and write counting of ``netlink.Kernel``; plus fault injection (the n-th next
operation of a kind refused with an errno, an ``observe()`` that fails) and a gate that holds
``observe()`` (a kernel worker that stops answering).
"""

from __future__ import annotations

import errno
import os
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Interface
from typing import Any

from overlay_agent.errors import KernelError
from overlay_agent.observed import OWNER_ALIAS, ROUTE_PROTO, ObservedNet, VxlanParams
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
from overlay_wire.contract import VTEP_NAME
from tests.fakes.namespace import Namespace, NetlinkFault

UNDERLAY_IP = IPv4Address("192.0.2.11")

PeerOperation = (
    DeleteRoute | DeleteNeighbour | DeleteFdb | ReplaceFdb | ReplaceNeighbour | ReplaceRoute
)
LinkOperation = (
    DeleteAddress | DeleteLink | CreateVtep | CreateBridge | SetLink | AddAddress | EnableForwarding
)

# As netlink.Kernel: repeating these is harmless, what they delete is already gone (or there).
TOLERATED: dict[type, tuple[int, ...]] = {
    DeleteRoute: (errno.ESRCH, errno.ENOENT),
    DeleteNeighbour: (errno.ENOENT,),
    DeleteFdb: (errno.ENOENT,),
    DeleteAddress: (errno.EADDRNOTAVAIL,),
    AddAddress: (errno.EEXIST,),
    DeleteLink: (errno.ENODEV,),
}


@dataclass
class _Fault:
    kind: type
    countdown: int
    code: int
    message: str


class FakeKernel:
    """A ``KernelEdge`` over a ``Namespace``; counts writes as ``netlink.Kernel`` does."""

    def __init__(
        self,
        namespace: Namespace | None = None,
        underlay_ip: IPv4Address = UNDERLAY_IP,
        underlay_mtu: int = 1500,
    ) -> None:
        self.ns = namespace or Namespace(IPv4Interface(f"{underlay_ip}/24"), underlay_mtu)
        self.underlay_ip = underlay_ip
        self.writes = 0
        self.applied: list[Operation] = []  # every operation that reached the kernel, in order
        self.observations = 0
        self.closed = False
        self.gate = threading.Event()  # cleared: observe() waits (a kernel call that hangs)
        self.gate.set()
        self.entered = threading.Event()  # set whenever observe() starts
        self._faults: list[_Fault] = []
        self.refusals: dict[Operation, NetlinkFault] = {}
        self._observe_errors: list[str] = []

    # -- fault injection ---------------------------------------------------------------------

    def fail(self, kind: type, code: int, nth: int = 1, message: str = "") -> None:
        """Refuse the ``nth`` next operation of ``kind`` that reaches the kernel, once."""
        self._faults.append(_Fault(kind, nth, code, message))

    def refuse(self, op: Operation, code: int, message: str = "") -> None:
        """Refuse ``op`` (this very operation) every time, until ``refusals`` is cleared."""
        self.refusals[op] = NetlinkFault(code, message)

    def fail_observe(self, reason: str) -> None:
        """Make the next ``observe()`` raise ``KernelError(reason)``."""
        self._observe_errors.append(reason)

    def _fault(self, op: Operation) -> None:
        refusal = self.refusals.get(op)
        if refusal is not None:
            raise refusal
        for fault in self._faults:
            if isinstance(op, fault.kind):
                fault.countdown -= 1
                if fault.countdown == 0:
                    self._faults.remove(fault)
                    raise NetlinkFault(fault.code, fault.message)
                return

    # -- KernelEdge --------------------------------------------------------------------------

    def close(self) -> None:
        self.closed = True

    def observe(self) -> ObservedNet:
        self._check_open()
        self.entered.set()
        if not self.gate.wait(timeout=60):
            raise KernelError("fake kernel: observe() held for 60 s (a test forgot to release it)")
        self.observations += 1
        if self._observe_errors:
            raise KernelError(self._observe_errors.pop(0))
        return self.ns.observe(self.underlay_ip)

    def apply_all(self, ops: Sequence[Operation]) -> list[tuple[Operation, KernelError]]:
        self._check_open()
        failures: list[tuple[Operation, KernelError]] = []
        run: list[PeerOperation] = []
        for op in ops:
            if isinstance(op, PeerOperation):
                run.append(op)
                continue
            failures += self._apply_peers(run)
            run = []
            try:
                self._apply_link(op)
            except (NetlinkFault, KernelError) as e:
                failures.append((op, _failure(op, e)))
                continue
            self.applied.append(op)
        return failures + self._apply_peers(run)

    def _check_open(self) -> None:
        if self.closed:
            raise KernelError("fake kernel: used after close()")

    def _apply_link(self, op: LinkOperation) -> None:
        ns = self.ns
        match op:
            case DeleteAddress(link, address):
                self._index(link)  # a missing link fails before anything is sent, as in Kernel
                self._send(op, ns.addr_del, link, address)
            case DeleteLink(name):
                if ns.find(name) is not None:
                    self._send(op, ns.link_del, name)
            case CreateVtep(v):
                params = VxlanParams(v.vni, v.port, False)
                self._send(op, ns.link_add, v.name, "vxlan", v.mtu, v.mac, params)
                self._set(op, v.name, None, up=True, tag=True)
            case CreateBridge(b):
                self._send(op, ns.link_add, b.name, "bridge", b.mtu)
                self._set(op, b.name, None, up=True, tag=True)
            case SetLink(name, mtu, up, tag):
                self._set(op, name, mtu, up, tag)
            case AddAddress(link, address):
                self._index(link)
                self._send(op, ns.addr_add, link, address)
            case EnableForwarding(version):
                self.writes += 1
                self._fault(op)
                if version == 6:
                    ns.forwarding6 = True
                else:
                    ns.forwarding = True

    def _set(self, op: Operation, name: str, mtu: int | None, up: bool, tag: bool) -> None:
        if mtu is None and not up and not tag:
            return
        self._index(name)
        alias = OWNER_ALIAS if tag else None
        self._send(op, self.ns.link_set, name, mtu, True if up else None, alias)

    def _send(self, op: Operation, call: Callable[..., Any], *args: Any) -> None:
        """One netlink message: counted as a write whatever the answer."""
        self.writes += 1
        try:
            self._fault(op)
            call(*args)
        except NetlinkFault as e:
            if e.code not in TOLERATED.get(type(op), ()):
                raise

    def _index(self, name: str) -> int:
        link = self.ns.find(name)
        if link is None:
            raise KernelError(f"link {name} does not exist")
        return link.index

    def _apply_peers(self, ops: list[PeerOperation]) -> list[tuple[Operation, KernelError]]:
        if not ops:
            return []
        vtep = self.ns.find(VTEP_NAME)
        missing = KernelError(f"link {VTEP_NAME} does not exist")
        failures: list[tuple[Operation, KernelError]] = []
        for op in ops:
            if vtep is None and not isinstance(op, DeleteRoute):
                failures.append((op, _failure(op, missing)))
                continue
            self.writes += 1
            try:
                self._fault(op)
                self._peer(op, vtep.index if vtep is not None else 0)
            except NetlinkFault as e:
                if e.code not in TOLERATED.get(type(op), ()):
                    message = f": {e.message}" if e.message else ""
                    text = f"{describe(op)}: {os.strerror(e.code)}{message}"
                    failures.append((op, KernelError(text)))
                    continue
            self.applied.append(op)
        return failures

    def _peer(self, op: PeerOperation, vtep: int) -> None:
        ns = self.ns
        match op:
            case ReplaceFdb(e):
                ns.fdb_replace(vtep, e.mac, e.dst)
            case ReplaceNeighbour(n):
                ns.neigh_replace(vtep, n.ip, n.mac)
            case ReplaceRoute(r):
                ns.route_replace(r.dst, r.via, vtep)
            case DeleteRoute(r):
                ns.route_del(r.dst, ROUTE_PROTO)
            case DeleteNeighbour(ip):
                ns.neigh_del(vtep, ip)
            case DeleteFdb(mac, dst):
                ns.fdb_del(vtep, mac, dst)


def _failure(op: Operation, e: Exception) -> KernelError:
    error = KernelError(f"{describe(op)}: {e}")
    error.__cause__ = e
    return error
