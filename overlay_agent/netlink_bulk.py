"""Bulk rtnetlink for the per-peer objects: neighbours and FDB entries on ``vtep1024`` and routes
with our protocol number. Kernel-filtered dumps and many requests per system call, on a plain
``AF_NETLINK`` socket, packed and parsed with ``struct``. Used only by ``netlink.Kernel``.

Design notes
- Why not pyroute2 for these: 0.9 runs an asyncio round and a generic decoder per message (about
  1 ms each); with three objects per peer a 4,093-peer namespace took seconds to observe and tens
  of seconds to program. Here a message costs microseconds, so the kernel's own work dominates.
  Links and addresses (a handful, with nested attributes) stay with pyroute2 in ``netlink``.
- Why not ``ip -batch``/``bridge -batch``: a child process per pass, text to render and parse,
  and errors reported by line number. A raw socket gives every request its own errno.
- Writes: a chunk of requests goes out in ONE ``sendmsg``; the kernel handles them in order and
  acknowledges each (``NLM_F_ACK``), also after one fails, so each request's result is matched by
  its sequence number. Chunks are bounded so the acks fit the receive buffer: an overflowing
  netlink socket drops acks (``ENOBUFS``). ``NETLINK_CAP_ACK`` keeps error acks small and
  ``NETLINK_EXT_ACK`` adds the kernel's explanation to them.
- Dumps ask the kernel to filter (``NETLINK_GET_STRICT_CHK``): routes by table and protocol,
  neighbours and FDB entries by the device, so their cost follows our objects, not everything in
  the namespace. The parser checks the same conditions again. A dump the kernel marks
  inconsistent (``NLM_F_DUMP_INTR``, the table changed under it) is repeated.
- Both families: neighbours and routes are dumped once per family (an ``AF_UNSPEC`` dump would
  also run the bridge family's FDB dump, with its own filtering rules); a request's family follows
  its address. FDB entries stay IPv4 (the underlay).
- The socket belongs to the namespace it was created in: ``open_socket`` must run inside it.
"""

from __future__ import annotations

import errno
import os
import socket
import struct
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network

from overlay_agent.kernel_objects import Address, Network
from overlay_agent.observed import ObservedNeighbour, ObservedRoute

# <linux/netlink.h>, <linux/rtnetlink.h>, <linux/neighbour.h>
NETLINK_ROUTE = 0
SO_RCVBUFFORCE = 33  # <asm-generic/socket.h>; not exported by the socket module
SOL_NETLINK = 270
NETLINK_CAP_ACK = 10
NETLINK_EXT_ACK = 11
NETLINK_GET_STRICT_CHK = 12
NLMSG_ERROR = 2
NLMSG_DONE = 3
NLM_F_REQUEST = 0x1
NLM_F_ACK = 0x4
NLM_F_DUMP_INTR = 0x10
NLM_F_DUMP = 0x300
NLM_F_REPLACE = 0x100
NLM_F_CREATE = 0x400
NLM_F_ACK_TLVS = 0x200  # on an error ack
NLMSGERR_ATTR_MSG = 1
RTM_NEWROUTE, RTM_DELROUTE, RTM_GETROUTE = 24, 25, 26
RTM_NEWNEIGH, RTM_DELNEIGH, RTM_GETNEIGH = 28, 29, 30
RTA_DST, RTA_OIF, RTA_GATEWAY, RTA_TABLE = 1, 4, 5, 15
NDA_DST, NDA_LLADDR, NDA_IFINDEX = 1, 2, 8
NLA_TYPE_MASK = 0x3FFF
RT_SCOPE_UNIVERSE, RT_SCOPE_NOWHERE = 0, 255
RTN_UNICAST = 1
NUD_NOARP, NUD_PERMANENT = 0x40, 0x80
NTF_SELF = 0x02
AF_BRIDGE = 7
FAMILIES: tuple[int, ...] = (socket.AF_INET, socket.AF_INET6)

CHUNK = 128  # requests per sendmsg; their acks (<1 KiB each) fit even a default receive buffer
RECEIVE_BUFFER = 1 << 20
RECV_SIZE = 1 << 16  # the kernel fills dump replies up to 32 KiB
DUMP_ATTEMPTS = 5

_HEADER = struct.Struct("=IHHII")  # nlmsghdr: length, type, flags, sequence, port id
_ATTR = struct.Struct("=HH")  # nlattr: length, type
_NDMSG = struct.Struct("=BxxxiHBB")  # family, ifindex, state, flags, type
_RTMSG = struct.Struct("=BBBBBBBBI")  # family, dst_len, src_len, tos, table, protocol, scope,
#                                       type, flags
_SIZE: dict[int, int] = {socket.AF_INET: 4, socket.AF_INET6: 16}
_MULTICAST: dict[int, int] = {socket.AF_INET: 224, socket.AF_INET6: 0xFF}  # first byte, and up
_ADDRESS: dict[int, type[IPv4Address] | type[IPv6Address]] = {
    socket.AF_INET: IPv4Address,
    socket.AF_INET6: IPv6Address,
}
_NETWORK: dict[int, type[IPv4Network] | type[IPv6Network]] = {
    socket.AF_INET: IPv4Network,
    socket.AF_INET6: IPv6Network,
}
_U32 = struct.Struct("=I")
_I32 = struct.Struct("=i")


@dataclass(frozen=True)
class Request:
    """One rtnetlink request without its header (added, with a sequence number, when sent)."""

    kind: int
    flags: int
    body: bytes


class DumpInterrupted(OSError):
    """The kernel kept changing the table while it was dumped, DUMP_ATTEMPTS times in a row."""


def open_socket() -> socket.socket:
    """A NETLINK_ROUTE socket in the calling thread's network namespace."""
    sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_ROUTE)
    try:
        sock.bind((0, 0))
        for option in (NETLINK_CAP_ACK, NETLINK_EXT_ACK, NETLINK_GET_STRICT_CHK):
            sock.setsockopt(SOL_NETLINK, option, 1)
        try:  # needs CAP_NET_ADMIN; the plain option is capped by net.core.rmem_max
            sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, RECEIVE_BUFFER)
        except PermissionError:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVE_BUFFER)
    except OSError:
        sock.close()
        raise
    return sock


class PeerTable:
    """Dump and write neighbours, FDB entries and routes through one netlink socket."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._sequence = 0

    def close(self) -> None:
        self._sock.close()

    # -- dumps -------------------------------------------------------------------------------

    def neighbours(self, ifindex: int) -> frozenset[ObservedNeighbour]:
        """IPv4 and IPv6 neighbour entries on ``ifindex`` that have a unicast destination (the
        kernel keeps multicast ones of its own, e.g. for MLD, as soon as IPv6 is up)."""
        found: set[ObservedNeighbour] = set()
        for family in FAMILIES:
            found.update(self._neighbours(ifindex, family))
        return frozenset(found)

    def _neighbours(self, ifindex: int, want: int) -> Iterator[ObservedNeighbour]:
        body = _NDMSG.pack(want, 0, 0, 0, 0) + _attr(NDA_IFINDEX, _U32.pack(ifindex))
        for data, start, end in self._dump(Request(RTM_GETNEIGH, 0, body), RTM_NEWNEIGH):
            family, index, state, _, _ = _NDMSG.unpack_from(data, start)
            attrs = _attrs(data, start + _NDMSG.size, end)
            dst = attrs.get(NDA_DST)
            if family != want or index != ifindex or dst is None or len(dst) != _SIZE[want]:
                continue
            if dst[0] >= _MULTICAST[want]:
                continue
            yield _neighbour(want, dst, attrs.get(NDA_LLADDR, b""), bool(state & NUD_PERMANENT))

    def fdb(self, ifindex: int) -> frozenset[tuple[str, IPv4Address]]:
        """(MAC, remote IPv4) of the device's own (``self``) FDB entries on ``ifindex``."""
        body = _NDMSG.pack(AF_BRIDGE, ifindex, 0, 0, 0)
        found = set()
        for data, start, end in self._dump(Request(RTM_GETNEIGH, 0, body), RTM_NEWNEIGH):
            family, index, _, flags, _ = _NDMSG.unpack_from(data, start)
            attrs = _attrs(data, start + _NDMSG.size, end)
            dst, mac = attrs.get(NDA_DST), attrs.get(NDA_LLADDR)
            if family != AF_BRIDGE or index != ifindex or not flags & NTF_SELF:
                continue
            if dst is None or len(dst) != 4 or mac is None:
                continue
            found.add((mac.hex(":"), IPv4Address(dst)))
        return frozenset(found)

    def routes(self, table: int, protocol: int) -> frozenset[ObservedRoute]:
        """IPv4 and IPv6 routes of ``table`` carrying ``protocol``."""
        found: set[ObservedRoute] = set()
        for family in FAMILIES:
            found.update(self._routes(table, protocol, family))
        return frozenset(found)

    def _routes(self, table: int, protocol: int, want: int) -> Iterator[ObservedRoute]:
        body = _RTMSG.pack(want, 0, 0, 0, _short_table(table), protocol, 0, 0, 0)
        body += _attr(RTA_TABLE, _U32.pack(table))
        zero = bytes(_SIZE[want])
        for data, start, end in self._dump(Request(RTM_GETROUTE, 0, body), RTM_NEWROUTE):
            family, dst_len, _, _, short_table, proto, _, _, _ = _RTMSG.unpack_from(data, start)
            attrs = _attrs(data, start + _RTMSG.size, end)
            seen_table = _U32.unpack(attrs[RTA_TABLE])[0] if RTA_TABLE in attrs else short_table
            if family != want or proto != protocol or seen_table != table:
                continue
            oif = attrs.get(RTA_OIF)
            yield _route(
                want,
                attrs.get(RTA_DST, zero),
                dst_len,
                attrs.get(RTA_GATEWAY),
                _U32.unpack(oif)[0] if oif is not None else None,
            )

    def _dump(self, request: Request, kind: int) -> list[tuple[bytes, int, int]]:
        """Every reply message of ``kind`` as (buffer, body start, body end)."""
        for _ in range(DUMP_ATTEMPTS):
            replies, interrupted = self._dump_once(request, kind)
            if not interrupted:
                return replies
        raise DumpInterrupted(errno.EAGAIN, "the kernel kept changing the table during the dump")

    def _dump_once(self, request: Request, kind: int) -> tuple[list[tuple[bytes, int, int]], bool]:
        sequence = self._send([Request(request.kind, NLM_F_DUMP, request.body)], ack=False)[0]
        replies: list[tuple[bytes, int, int]] = []
        interrupted = False
        while True:
            data = self._sock.recv(RECV_SIZE)
            for mtype, flags, seq, start, end in _messages(data):
                if seq != sequence:
                    continue  # a late ack of an earlier, abandoned chunk
                interrupted |= bool(flags & NLM_F_DUMP_INTR)
                if mtype == NLMSG_DONE:
                    code = _I32.unpack_from(data, start)[0] if end - start >= 4 else 0
                    if code < 0:
                        raise OSError(-code, f"dump: {os.strerror(-code)}")
                    return replies, interrupted
                if mtype == NLMSG_ERROR:
                    code, message = _error(data, flags, start, end)
                    if code:
                        raise OSError(code, f"dump: {os.strerror(code)}{message}")
                if mtype == kind:
                    replies.append((data, start, end))

    # -- writes ------------------------------------------------------------------------------

    def write(self, requests: Sequence[Request]) -> list[tuple[int, str]]:
        """Send every request (in order, CHUNK per system call); (errno, kernel message) each,
        errno 0 meaning done. An ``OSError`` means the results of the current chunk are unknown.
        """
        results: list[tuple[int, str]] = []
        for first in range(0, len(requests), CHUNK):
            results += self._write_chunk(requests[first : first + CHUNK])
        return results

    def _write_chunk(self, requests: Sequence[Request]) -> list[tuple[int, str]]:
        sequences = self._send(requests, ack=True)
        pending = {seq: i for i, seq in enumerate(sequences)}
        results: list[tuple[int, str]] = [(0, "")] * len(requests)
        while pending:
            data = self._sock.recv(RECV_SIZE)
            for mtype, flags, seq, start, end in _messages(data):
                i = pending.pop(seq, None)
                if i is not None and mtype == NLMSG_ERROR:
                    results[i] = _error(data, flags, start, end)
        return results

    def _send(self, requests: Sequence[Request], ack: bool) -> list[int]:
        chunks, sequences = [], []
        for r in requests:
            self._sequence = (self._sequence + 1) & 0xFFFFFFFF
            flags = NLM_F_REQUEST | r.flags | (NLM_F_ACK if ack else 0)
            chunks.append(
                _HEADER.pack(_HEADER.size + len(r.body), r.kind, flags, self._sequence, 0)
            )
            chunks.append(r.body)
            sequences.append(self._sequence)
        self._sock.sendto(b"".join(chunks), (0, 0))
        return sequences


# -- parsed objects ---------------------------------------------------------------------------
# The same neighbours and routes come back on every pass: building ``ipaddress`` objects for
# thousands of them (IPv6 ones especially) was most of a dump's cost, so they are memoised by
# their wire form. The values are immutable, so sharing them changes nothing.
PARSE_CACHE = 1 << 15


@lru_cache(maxsize=PARSE_CACHE)
def _neighbour(family: int, dst: bytes, lladdr: bytes, permanent: bool) -> ObservedNeighbour:
    return ObservedNeighbour(_ADDRESS[family](dst), lladdr.hex(":"), permanent)


@lru_cache(maxsize=PARSE_CACHE)
def _route(
    family: int, dst: bytes, dst_len: int, gateway: bytes | None, oif: int | None
) -> ObservedRoute:
    return ObservedRoute(
        dst=_NETWORK[family]((int.from_bytes(dst, "big"), dst_len)),
        via=_ADDRESS[family](gateway) if gateway is not None else None,
        oif=oif,
    )


def forget_parsed() -> None:
    """Empty the memos, as in a fresh process (benchmarks of a first pass use this)."""
    _neighbour.cache_clear()
    _route.cache_clear()


# -- requests (the ``ip``/``bridge`` equivalents are in each docstring) ----------------------


def replace_neighbour(ifindex: int, ip: Address, mac: str) -> Request:
    """``ip neigh replace IP lladdr MAC dev DEV nud permanent``"""
    body = _NDMSG.pack(_family(ip), ifindex, NUD_PERMANENT, 0, 0)
    body += _attr(NDA_DST, ip.packed) + _attr(NDA_LLADDR, _mac(mac))
    return Request(RTM_NEWNEIGH, NLM_F_CREATE | NLM_F_REPLACE, body)


def delete_neighbour(ifindex: int, ip: Address) -> Request:
    """``ip neigh del IP dev DEV``"""
    body = _NDMSG.pack(_family(ip), ifindex, 0, 0, 0) + _attr(NDA_DST, ip.packed)
    return Request(RTM_DELNEIGH, 0, body)


def replace_fdb(ifindex: int, mac: str, dst: IPv4Address) -> Request:
    """``bridge fdb replace MAC dev DEV dst DST self permanent``"""
    body = _NDMSG.pack(AF_BRIDGE, ifindex, NUD_PERMANENT | NUD_NOARP, NTF_SELF, 0)
    body += _attr(NDA_LLADDR, _mac(mac)) + _attr(NDA_DST, dst.packed)
    return Request(RTM_NEWNEIGH, NLM_F_CREATE | NLM_F_REPLACE, body)


def delete_fdb(ifindex: int, mac: str, dst: IPv4Address) -> Request:
    """``bridge fdb del MAC dev DEV dst DST self``"""
    body = _NDMSG.pack(AF_BRIDGE, ifindex, NUD_NOARP, NTF_SELF, 0)
    body += _attr(NDA_LLADDR, _mac(mac)) + _attr(NDA_DST, dst.packed)
    return Request(RTM_DELNEIGH, 0, body)


def replace_route(dst: Network, via: Address, oif: int, table: int, protocol: int) -> Request:
    """``ip route replace DST via VIA dev DEV proto PROTOCOL table TABLE`` (VIA: same family)"""
    body = _RTMSG.pack(
        _family(dst),
        dst.prefixlen,
        0,
        0,
        _short_table(table),
        protocol,
        RT_SCOPE_UNIVERSE,
        RTN_UNICAST,
        0,
    )
    body += _attr(RTA_TABLE, _U32.pack(table)) + _attr(RTA_DST, dst.network_address.packed)
    body += _attr(RTA_GATEWAY, via.packed) + _attr(RTA_OIF, _U32.pack(oif))
    return Request(RTM_NEWROUTE, NLM_F_CREATE | NLM_F_REPLACE, body)


def delete_route(dst: Network, table: int, protocol: int) -> Request:
    """``ip route del DST proto PROTOCOL table TABLE``: only a route carrying ``protocol``."""
    body = _RTMSG.pack(
        _family(dst), dst.prefixlen, 0, 0, _short_table(table), protocol, RT_SCOPE_NOWHERE, 0, 0
    )
    body += _attr(RTA_TABLE, _U32.pack(table)) + _attr(RTA_DST, dst.network_address.packed)
    return Request(RTM_DELROUTE, 0, body)


# -- wire helpers ----------------------------------------------------------------------------


def _attr(kind: int, payload: bytes) -> bytes:
    length = _ATTR.size + len(payload)
    return _ATTR.pack(length, kind) + payload + b"\0" * (-length % 4)


def _attrs(data: bytes, start: int, end: int) -> dict[int, bytes]:
    found = {}
    while start + _ATTR.size <= end:
        length, kind = _ATTR.unpack_from(data, start)
        if length < _ATTR.size:
            break
        found[kind & NLA_TYPE_MASK] = data[start + _ATTR.size : start + length]
        start += (length + 3) & ~3
    return found


def _messages(data: bytes) -> Iterator[tuple[int, int, int, int, int]]:
    """(type, flags, sequence, body start, body end) of each message in one datagram."""
    offset = 0
    while offset + _HEADER.size <= len(data):
        length, mtype, flags, seq, _ = _HEADER.unpack_from(data, offset)
        if length < _HEADER.size:
            return
        yield mtype, flags, seq, offset + _HEADER.size, min(offset + length, len(data))
        offset += (length + 3) & ~3


def _error(data: bytes, flags: int, start: int, end: int) -> tuple[int, str]:
    """(errno, ": kernel message" or "") of an ``NLMSG_ERROR`` body; errno 0 is an ack."""
    code = -_I32.unpack_from(data, start)[0]
    if not code or not flags & NLM_F_ACK_TLVS:
        return code, ""
    # With NETLINK_CAP_ACK the echoed request is its header alone; the TLVs follow it.
    message = _attrs(data, start + 4 + _HEADER.size, end).get(NLMSGERR_ATTR_MSG, b"")
    text = message.rstrip(b"\0").decode(errors="replace")
    return code, f": {text}" if text else ""


def _family(value: Address | Network) -> int:
    return socket.AF_INET if value.version == 4 else socket.AF_INET6


def _mac(text: str) -> bytes:
    return bytes.fromhex(text.replace(":", ""))


def _short_table(table: int) -> int:
    """The table in the 8-bit header field: RT_TABLE_COMPAT when it does not fit."""
    return table if table < 256 else 252
