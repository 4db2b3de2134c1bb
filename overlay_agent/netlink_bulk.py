"""Bulk rtnetlink for the per-peer objects: neighbours and FDB entries on ``vtep1024`` and routes
with our protocol number. Kernel-filtered dumps and many requests per system call, on a plain
``AF_NETLINK`` socket; the messages are packed and parsed by ``rtnetlink``. Used only by
``netlink.Kernel``.

Design notes
- Why not pyroute2 for these: 0.9 runs an asyncio round and a generic decoder per message (about
  1 ms each); with three objects per peer a 4,093-peer namespace took seconds to observe and tens
  of seconds to program. Here a message costs microseconds, so the kernel's own work dominates.
  Links and addresses (a handful, with nested attributes) stay with pyroute2 in ``netlink``.
- Why not ``ip -batch``/``bridge -batch``: a child process per pass, text to render and parse,
  and errors reported by line number. A raw socket gives every request its own errno.
- Writes: a chunk of requests goes out in ONE ``sendmsg``; the kernel handles them in order,
  inside that call, and answers every request that fails with an error carrying its sequence
  number, also after an earlier one failed. Only the chunk's last request asks for an
  acknowledgement (``NLM_F_ACK``): once it arrives every earlier answer has too (they are
  queued in order), and a request without an error succeeded. One acknowledgement per request
  would be one ``recv`` per request: tens of thousands in a first pass. Chunks are bounded so
  the answers fit the receive buffer: an overflowing netlink socket drops them (``ENOBUFS``).
  ``NETLINK_CAP_ACK`` keeps error answers small and ``NETLINK_EXT_ACK`` adds the kernel's
  explanation to them.
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
from collections.abc import Iterator, Sequence
from functools import lru_cache
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network

from overlay_agent import rtnetlink as rt
from overlay_agent.observed import ObservedNeighbour, ObservedRoute

# <linux/netlink.h>: the socket's options (the messages' constants are in ``rtnetlink``)
NETLINK_ROUTE = 0
SO_RCVBUFFORCE = 33  # <asm-generic/socket.h>; not exported by the socket module
SOL_NETLINK = 270
NETLINK_CAP_ACK = 10
NETLINK_EXT_ACK = 11
NETLINK_GET_STRICT_CHK = 12
FAMILIES: tuple[int, ...] = (socket.AF_INET, socket.AF_INET6)

CHUNK = 128  # requests per sendmsg; their acks (<1 KiB each) fit even a default receive buffer
RECEIVE_BUFFER = 1 << 20
RECV_SIZE = 1 << 16  # the kernel fills dump replies up to 32 KiB
DUMP_ATTEMPTS = 5

_MULTICAST: dict[int, int] = {socket.AF_INET: 224, socket.AF_INET6: 0xFF}  # first byte, and up
_ADDRESS: dict[int, type[IPv4Address] | type[IPv6Address]] = {
    socket.AF_INET: IPv4Address,
    socket.AF_INET6: IPv6Address,
}
_NETWORK: dict[int, type[IPv4Network] | type[IPv6Network]] = {
    socket.AF_INET: IPv4Network,
    socket.AF_INET6: IPv6Network,
}


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
        body = rt.NDMSG.pack(want, 0, 0, 0, 0) + rt.attr(rt.NDA_IFINDEX, rt.U32.pack(ifindex))
        for data, start, end in self._dump(rt.Request(rt.RTM_GETNEIGH, 0, body), rt.RTM_NEWNEIGH):
            family, index, state, _, _ = rt.NDMSG.unpack_from(data, start)
            attrs = rt.attrs(data, start + rt.NDMSG.size, end)
            dst = attrs.get(rt.NDA_DST)
            if family != want or index != ifindex or dst is None or len(dst) != rt.SIZE[want]:
                continue
            if dst[0] >= _MULTICAST[want]:
                continue
            yield _neighbour(
                want, dst, attrs.get(rt.NDA_LLADDR, b""), bool(state & rt.NUD_PERMANENT)
            )

    def fdb(self, ifindex: int) -> frozenset[tuple[str, IPv4Address]]:
        """(MAC, remote IPv4) of the device's own (``self``) FDB entries on ``ifindex``."""
        body = rt.NDMSG.pack(rt.AF_BRIDGE, ifindex, 0, 0, 0)
        found = set()
        for data, start, end in self._dump(rt.Request(rt.RTM_GETNEIGH, 0, body), rt.RTM_NEWNEIGH):
            family, index, _, flags, _ = rt.NDMSG.unpack_from(data, start)
            attrs = rt.attrs(data, start + rt.NDMSG.size, end)
            dst, mac = attrs.get(rt.NDA_DST), attrs.get(rt.NDA_LLADDR)
            if family != rt.AF_BRIDGE or index != ifindex or not flags & rt.NTF_SELF:
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
        body = rt.RTMSG.pack(want, 0, 0, 0, rt.short_table(table), protocol, 0, 0, 0)
        body += rt.attr(rt.RTA_TABLE, rt.U32.pack(table))
        zero = bytes(rt.SIZE[want])
        for data, start, end in self._dump(rt.Request(rt.RTM_GETROUTE, 0, body), rt.RTM_NEWROUTE):
            family, dst_len, _, _, short_table, proto, _, _, _ = rt.RTMSG.unpack_from(data, start)
            attrs = rt.attrs(data, start + rt.RTMSG.size, end)
            seen_table = (
                rt.U32.unpack(attrs[rt.RTA_TABLE])[0] if rt.RTA_TABLE in attrs else short_table
            )
            if family != want or proto != protocol or seen_table != table:
                continue
            oif = attrs.get(rt.RTA_OIF)
            yield _route(
                want,
                attrs.get(rt.RTA_DST, zero),
                dst_len,
                attrs.get(rt.RTA_GATEWAY),
                rt.U32.unpack(oif)[0] if oif is not None else None,
            )

    def _dump(self, request: rt.Request, kind: int) -> list[tuple[bytes, int, int]]:
        """Every reply message of ``kind`` as (buffer, body start, body end)."""
        for _ in range(DUMP_ATTEMPTS):
            replies, interrupted = self._dump_once(request, kind)
            if not interrupted:
                return replies
        raise DumpInterrupted(errno.EAGAIN, "the kernel kept changing the table during the dump")

    def _dump_once(
        self, request: rt.Request, kind: int
    ) -> tuple[list[tuple[bytes, int, int]], bool]:
        sequence = self._send(
            [rt.Request(request.kind, rt.NLM_F_DUMP, request.body)], ack_last=False
        )
        replies: list[tuple[bytes, int, int]] = []
        interrupted = False
        while True:
            data = self._sock.recv(RECV_SIZE)
            for mtype, flags, seq, start, end in rt.messages(data):
                if seq != sequence:
                    continue  # a late ack of an earlier, abandoned chunk
                interrupted |= bool(flags & rt.NLM_F_DUMP_INTR)
                if mtype == rt.NLMSG_DONE:
                    code = rt.I32.unpack_from(data, start)[0] if end - start >= 4 else 0
                    if code < 0:
                        raise OSError(-code, f"dump: {os.strerror(-code)}")
                    return replies, interrupted
                if mtype == rt.NLMSG_ERROR:
                    code, message = rt.error(data, flags, start, end)
                    if code:
                        raise OSError(code, f"dump: {os.strerror(code)}{message}")
                if mtype == kind:
                    replies.append((data, start, end))

    # -- writes ------------------------------------------------------------------------------

    def write(self, requests: Sequence[rt.Request]) -> list[tuple[int, str]]:
        """Send every request (in order, CHUNK per system call); (errno, kernel message) each,
        errno 0 meaning done. An ``OSError`` means the results of the current chunk are unknown.
        """
        results: list[tuple[int, str]] = []
        for first in range(0, len(requests), CHUNK):
            results += self._write_chunk(requests[first : first + CHUNK])
        return results

    def _write_chunk(self, requests: Sequence[rt.Request]) -> list[tuple[int, str]]:
        first = self._send(requests, ack_last=True)
        results: list[tuple[int, str]] = [(0, "")] * len(requests)
        last = len(requests) - 1
        while True:
            data = self._sock.recv(RECV_SIZE)
            for mtype, flags, seq, start, end in rt.messages(data):
                i = (seq - first) & 0xFFFFFFFF
                if i > last or mtype != rt.NLMSG_ERROR:
                    continue  # a late answer to an earlier, abandoned chunk
                results[i] = rt.error(data, flags, start, end)
                if i == last:
                    return results

    def _send(self, requests: Sequence[rt.Request], ack_last: bool) -> int:
        """Send ``requests`` in one system call; the first one's sequence number (the others
        follow it). With ``ack_last`` the last one asks for an acknowledgement."""
        chunks = []
        first = (self._sequence + 1) & 0xFFFFFFFF
        pack, size, request = rt.HEADER.pack, rt.HEADER.size, rt.NLM_F_REQUEST
        for r in requests:
            self._sequence = (self._sequence + 1) & 0xFFFFFFFF
            chunks.append(pack(size + len(r.body), r.kind, request | r.flags, self._sequence, 0))
            chunks.append(r.body)
        if ack_last:
            last = requests[-1]
            chunks[-2] = pack(
                size + len(last.body),
                last.kind,
                request | last.flags | rt.NLM_F_ACK,
                self._sequence,
                0,
            )
        self._sock.sendto(b"".join(chunks), (0, 0))
        return first


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
