"""The rtnetlink wire format of the per-peer objects (neighbours, FDB entries, routes): the
constants, the requests (``ip``/``bridge`` equivalents in each docstring) and the parsing of
replies. Pure packing and unpacking with ``struct``; ``netlink_bulk`` sends and receives them.
"""

from __future__ import annotations

import socket
import struct
from collections.abc import Iterator
from ipaddress import IPv4Address
from typing import NamedTuple

from overlay_agent.kernel_objects import Address, Network

# <linux/netlink.h>, <linux/rtnetlink.h>, <linux/neighbour.h>
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

HEADER = struct.Struct("=IHHII")  # nlmsghdr: length, type, flags, sequence, port id
ATTR = struct.Struct("=HH")  # nlattr: length, type
NDMSG = struct.Struct("=BxxxiHBB")  # family, ifindex, state, flags, type
RTMSG = struct.Struct("=BBBBBBBBI")  # family, dst_len, src_len, tos, table, protocol, scope,
#                                       type, flags
SIZE: dict[int, int] = {socket.AF_INET: 4, socket.AF_INET6: 16}
U32 = struct.Struct("=I")
I32 = struct.Struct("=i")


class Request(NamedTuple):
    """One rtnetlink request without its header (added, with a sequence number, when sent)."""

    kind: int
    flags: int
    body: bytes


# -- requests -------------------------------------------------------------------------------


# The replacements (thousands in a first pass) are packed whole by one fixed-layout ``struct``
# per family: body and attributes in one call (the attributes' lengths are constants; the MAC's
# 6 bytes are padded to 8). The result is byte for byte what ``attr`` would build.
def _layout(head: str, *payloads: str) -> struct.Struct:
    return struct.Struct("=" + head + "".join("HH" + p for p in payloads))


_NEIGH = {f: _layout("BxxxiHBB", f"{n}s", "6sxx") for f, n in SIZE.items()}
_FDB = _layout("BxxxiHBB", "6sxx", "4s")
_ROUTE = {f: _layout("BBBBBBBBI", "I", f"{n}s", f"{n}s", "I") for f, n in SIZE.items()}
_REPLACE = NLM_F_CREATE | NLM_F_REPLACE


def replace_neighbour(ifindex: int, ip: Address, mac: str) -> Request:
    """``ip neigh replace IP lladdr MAC dev DEV nud permanent``"""
    family = family_of(ip)
    n = SIZE[family]
    body = _NEIGH[family].pack(
        family,
        ifindex,
        NUD_PERMANENT,
        0,
        0,
        4 + n,
        NDA_DST,
        ip.packed,
        10,
        NDA_LLADDR,
        mac_bytes(mac),
    )
    return Request(RTM_NEWNEIGH, _REPLACE, body)


def delete_neighbour(ifindex: int, ip: Address) -> Request:
    """``ip neigh del IP dev DEV``"""
    body = NDMSG.pack(family_of(ip), ifindex, 0, 0, 0) + attr(NDA_DST, ip.packed)
    return Request(RTM_DELNEIGH, 0, body)


def replace_fdb(ifindex: int, mac: str, dst: IPv4Address) -> Request:
    """``bridge fdb replace MAC dev DEV dst DST self permanent``"""
    state = NUD_PERMANENT | NUD_NOARP
    body = _FDB.pack(
        AF_BRIDGE,
        ifindex,
        state,
        NTF_SELF,
        0,
        10,
        NDA_LLADDR,
        mac_bytes(mac),
        8,
        NDA_DST,
        dst.packed,
    )
    return Request(RTM_NEWNEIGH, _REPLACE, body)


def delete_fdb(ifindex: int, mac: str, dst: IPv4Address) -> Request:
    """``bridge fdb del MAC dev DEV dst DST self``"""
    body = NDMSG.pack(AF_BRIDGE, ifindex, NUD_NOARP, NTF_SELF, 0)
    body += attr(NDA_LLADDR, mac_bytes(mac)) + attr(NDA_DST, dst.packed)
    return Request(RTM_DELNEIGH, 0, body)


def replace_route(dst: Network, via: Address, oif: int, table: int, protocol: int) -> Request:
    """``ip route replace DST via VIA dev DEV proto PROTOCOL table TABLE`` (VIA: same family)"""
    family = family_of(dst)
    n = 4 + SIZE[family]
    body = _ROUTE[family].pack(
        *(family, dst.prefixlen, 0, 0, short_table(table), protocol, RT_SCOPE_UNIVERSE),
        *(RTN_UNICAST, 0, 8, RTA_TABLE, table, n, RTA_DST, dst.network_address.packed),
        *(n, RTA_GATEWAY, via.packed, 8, RTA_OIF, oif),
    )
    return Request(RTM_NEWROUTE, _REPLACE, body)


def delete_route(dst: Network, table: int, protocol: int) -> Request:
    """``ip route del DST proto PROTOCOL table TABLE``: only a route carrying ``protocol``."""
    body = RTMSG.pack(
        family_of(dst), dst.prefixlen, 0, 0, short_table(table), protocol, RT_SCOPE_NOWHERE, 0, 0
    )
    body += attr(RTA_TABLE, U32.pack(table)) + attr(RTA_DST, dst.network_address.packed)
    return Request(RTM_DELROUTE, 0, body)


# -- wire helpers ----------------------------------------------------------------------------


def attr(kind: int, payload: bytes) -> bytes:
    length = ATTR.size + len(payload)
    return ATTR.pack(length, kind) + payload + b"\0" * (-length % 4)


def attrs(data: bytes, start: int, end: int) -> dict[int, bytes]:
    found = {}
    while start + ATTR.size <= end:
        length, kind = ATTR.unpack_from(data, start)
        if length < ATTR.size:
            break
        found[kind & NLA_TYPE_MASK] = data[start + ATTR.size : start + length]
        start += (length + 3) & ~3
    return found


def messages(data: bytes) -> Iterator[tuple[int, int, int, int, int]]:
    """(type, flags, sequence, body start, body end) of each message in one datagram."""
    offset = 0
    while offset + HEADER.size <= len(data):
        length, mtype, flags, seq, _ = HEADER.unpack_from(data, offset)
        if length < HEADER.size:
            return
        yield mtype, flags, seq, offset + HEADER.size, min(offset + length, len(data))
        offset += (length + 3) & ~3


def error(data: bytes, flags: int, start: int, end: int) -> tuple[int, str]:
    """(errno, ": kernel message" or "") of an ``NLMSG_ERROR`` body; errno 0 is an ack."""
    code = -I32.unpack_from(data, start)[0]
    if not code or not flags & NLM_F_ACK_TLVS:
        return code, ""
    # With NETLINK_CAP_ACK the echoed request is its header alone; the TLVs follow it.
    message = attrs(data, start + 4 + HEADER.size, end).get(NLMSGERR_ATTR_MSG, b"")
    text = message.rstrip(b"\0").decode(errors="replace")
    return code, f": {text}" if text else ""


def family_of(value: Address | Network) -> int:
    return socket.AF_INET if value.version == 4 else socket.AF_INET6


def mac_bytes(text: str) -> bytes:
    return bytes.fromhex(text.replace(":", ""))


def short_table(table: int) -> int:
    """The table in the 8-bit header field: RT_TABLE_COMPAT when it does not fit."""
    return table if table < 256 else 252
