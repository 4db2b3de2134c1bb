"""Wire format of the bulk netlink requests and replies (``rtnetlink``; no socket is opened)."""

from __future__ import annotations

import socket
import struct
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network

import pytest

from overlay_agent import rtnetlink as nb

pytestmark = pytest.mark.unit


def header(length: int, kind: int, flags: int, seq: int) -> bytes:
    return struct.pack("=IHHII", length, kind, flags, seq, 0)


def test_attributes_are_padded_to_four_bytes_and_parse_back() -> None:
    body = nb.attr(1, b"\x01\x02\x03") + nb.attr(8, b"\x05\x00\x00\x00") + nb.attr(2, b"")
    assert len(body) == 8 + 8 + 4
    assert nb.attrs(body, 0, len(body)) == {1: b"\x01\x02\x03", 8: b"\x05\x00\x00\x00", 2: b""}


def test_a_truncated_or_zero_length_attribute_ends_parsing() -> None:
    body = nb.attr(1, b"\x01\x02\x03\x04") + struct.pack("=HH", 0, 2) + nb.attr(3, b"xx")
    assert nb.attrs(body, 0, len(body)) == {1: b"\x01\x02\x03\x04"}


def test_route_replace_carries_table_protocol_gateway_and_device() -> None:
    r = nb.replace_route(IPv4Network("9.0.1.64/26"), IPv4Address("44.128.0.3"), 7, 254, 211)
    assert r.kind == nb.RTM_NEWROUTE
    assert r.flags == nb.NLM_F_CREATE | nb.NLM_F_REPLACE
    family, dst_len, _, _, table, proto, scope, rtype, _ = nb.RTMSG.unpack_from(r.body)
    assert (family, dst_len, table, proto, scope, rtype) == (socket.AF_INET, 26, 254, 211, 0, 1)
    attrs = nb.attrs(r.body, nb.RTMSG.size, len(r.body))
    assert attrs == {
        nb.RTA_TABLE: struct.pack("=I", 254),
        nb.RTA_DST: bytes([9, 0, 1, 64]),
        nb.RTA_GATEWAY: bytes([44, 128, 0, 3]),
        nb.RTA_OIF: struct.pack("=I", 7),
    }


def test_a_table_beyond_255_goes_in_the_attribute_only() -> None:
    r = nb.delete_route(IPv4Network("9.0.1.64/26"), 1000, 211)
    assert nb.RTMSG.unpack_from(r.body)[4] == 252  # RT_TABLE_COMPAT
    assert nb.attrs(r.body, nb.RTMSG.size, len(r.body))[nb.RTA_TABLE] == struct.pack("=I", 1000)


def test_route_delete_matches_any_scope_but_only_our_protocol() -> None:
    r = nb.delete_route(IPv4Network("9.0.1.64/26"), 254, 211)
    _, _, _, _, _, proto, scope, rtype, _ = nb.RTMSG.unpack_from(r.body)
    assert (r.kind, proto, scope, rtype) == (nb.RTM_DELROUTE, 211, nb.RT_SCOPE_NOWHERE, 0)


def test_fdb_entries_are_self_permanent_on_the_device() -> None:
    r = nb.replace_fdb(5, "70:b3:d5:00:00:02", IPv4Address("192.0.2.12"))
    family, index, state, flags, _ = nb.NDMSG.unpack_from(r.body)
    assert (family, index, flags) == (nb.AF_BRIDGE, 5, nb.NTF_SELF)
    assert state == nb.NUD_PERMANENT | nb.NUD_NOARP
    attrs = nb.attrs(r.body, nb.NDMSG.size, len(r.body))
    assert attrs[nb.NDA_LLADDR] == bytes.fromhex("70b3d5000002")
    assert attrs[nb.NDA_DST] == bytes([192, 0, 2, 12])


def test_neighbours_are_permanent_ipv4_entries() -> None:
    r = nb.replace_neighbour(5, IPv4Address("44.128.0.2"), "70:b3:d5:00:00:02")
    family, index, state, flags, _ = nb.NDMSG.unpack_from(r.body)
    assert (family, index, state, flags) == (socket.AF_INET, 5, nb.NUD_PERMANENT, 0)
    d = nb.delete_neighbour(5, IPv4Address("44.128.0.2"))
    assert d.kind == nb.RTM_DELNEIGH
    assert nb.attrs(d.body, nb.NDMSG.size, len(d.body)) == {nb.NDA_DST: bytes([44, 128, 0, 2])}


def test_one_datagram_holds_several_messages() -> None:
    ack = struct.pack("=i", 0) + header(16, nb.RTM_NEWNEIGH, 5, 41)
    refused = struct.pack("=i", -17) + header(16, nb.RTM_NEWNEIGH, 5, 42)
    data = header(16 + len(ack), nb.NLMSG_ERROR, 0, 41) + ack
    data += header(16 + len(refused), nb.NLMSG_ERROR, 0, 42) + refused
    found = list(nb.messages(data))
    assert [(t, seq) for t, _, seq, _, _ in found] == [(nb.NLMSG_ERROR, 41), (nb.NLMSG_ERROR, 42)]
    assert [nb.error(data, f, s, e) for _, f, _, s, e in found] == [(0, ""), (17, "")]


def test_an_error_ack_carries_the_kernels_explanation() -> None:
    text = nb.attr(nb.NLMSGERR_ATTR_MSG, b"Nexthop has invalid gateway\0")
    body = struct.pack("=i", -101) + header(16, nb.RTM_NEWROUTE, 5, 7) + text
    data = header(16 + len(body), nb.NLMSG_ERROR, nb.NLM_F_ACK_TLVS, 7) + body
    ((_, flags, _, start, end),) = nb.messages(data)
    assert nb.error(data, flags, start, end) == (101, ": Nexthop has invalid gateway")


@pytest.mark.parametrize(
    ("dst", "via"),
    [
        (IPv4Network("9.0.1.64/26"), IPv4Address("44.128.0.3")),
        (IPv6Network("fd01:b::3:0:0:0/80"), IPv6Address("fd01:a::3")),
    ],
)
def test_fixed_layouts_are_the_attributes_byte_for_byte(
    dst: IPv4Network | IPv6Network, via: IPv4Address | IPv6Address
) -> None:
    family = socket.AF_INET if dst.version == 4 else socket.AF_INET6
    route = nb.RTMSG.pack(family, dst.prefixlen, 0, 0, 254, 211, 0, 1, 0)
    route += nb.attr(nb.RTA_TABLE, struct.pack("=I", 254))
    route += nb.attr(nb.RTA_DST, dst.network_address.packed) + nb.attr(nb.RTA_GATEWAY, via.packed)
    route += nb.attr(nb.RTA_OIF, struct.pack("=I", 7))
    assert nb.replace_route(dst, via, 7, 254, 211).body == route
    mac = bytes.fromhex("70b3d5000003")
    neighbour = nb.NDMSG.pack(family, 7, nb.NUD_PERMANENT, 0, 0)
    neighbour += nb.attr(nb.NDA_DST, via.packed) + nb.attr(nb.NDA_LLADDR, mac)
    assert nb.replace_neighbour(7, via, "70:b3:d5:00:00:03").body == neighbour
    fdb = nb.NDMSG.pack(nb.AF_BRIDGE, 7, nb.NUD_PERMANENT | nb.NUD_NOARP, nb.NTF_SELF, 0)
    fdb += nb.attr(nb.NDA_LLADDR, mac) + nb.attr(nb.NDA_DST, bytes([192, 0, 2, 3]))
    assert nb.replace_fdb(7, "70:b3:d5:00:00:03", IPv4Address("192.0.2.3")).body == fdb
