"""The agent's memoised parsers read every string exactly as ``ipaddress`` does.

Each parser has a fast path for the forms the masters write and hands everything else to
``ipaddress``; these properties feed them canonical forms, near misses (leading zeros, out of
range, upper case, embedded IPv4, scope IDs, whitespace, other separators) and noise, and
compare with ``ipaddress`` itself.
"""

from __future__ import annotations

from collections.abc import Callable
from ipaddress import IPv4Address, IPv4Interface, IPv4Network, IPv6Interface, IPv6Network
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from overlay_agent import addresses

pytestmark = pytest.mark.unit

octets = st.one_of(
    st.integers(0, 255).map(str),
    st.integers(0, 999).map(lambda n: f"{n:03d}"),  # leading zeros
    st.sampled_from(["256", "-1", "+1", " 1", "1_0", "", "0x1", "\u0661"]),
)
dotted = st.lists(octets, min_size=3, max_size=5).map(".".join)
prefixes = st.one_of(
    st.integers(0, 130).map(str), st.sampled_from(["026", "", "-1", "255.255.255.0", " 8"])
)
hextets = st.one_of(
    st.integers(0, 0xFFFF).map(lambda n: f"{n:x}"),
    st.integers(0, 0xFFFF).map(lambda n: f"{n:X}"),
    st.sampled_from(["00000", "g", "", "1.2.3.4", "fe80%eth0"]),
)
ipv6_text = st.one_of(
    st.lists(hextets, min_size=1, max_size=9).map(":".join),
    st.tuples(
        st.lists(hextets, max_size=8).map(":".join), st.lists(hextets, max_size=8).map(":".join)
    ).map("::".join),
    st.integers(0, (1 << 128) - 1).map(lambda n: str(IPv6Network((n, 128)).network_address)),
)
macs = st.one_of(
    st.lists(st.integers(0, 255).map(lambda n: f"{n:02X}"), min_size=6, max_size=6).map(":".join),
    st.lists(
        st.sampled_from(["0a", "+1", " 1", "gg", "1", "001", "Ff"]), min_size=5, max_size=7
    ).map(":".join),
)


def reference(parse: Callable[[str], Any], text: str) -> Any:
    try:
        return parse(text)
    except ValueError:
        return None


def fresh() -> None:
    addresses.forget_parsed()


@settings(max_examples=400)
@given(dotted)
def test_addresses_read_as_ipaddress_reads_them(text: str) -> None:
    fresh()
    assert addresses.ipv4(text) == reference(IPv4Address, text)


@settings(max_examples=400)
@given(st.tuples(dotted, prefixes).map("/".join) | dotted)
def test_networks_and_interfaces_read_as_ipaddress_reads_them(text: str) -> None:
    fresh()
    assert addresses.ipv4_net(text) == reference(lambda t: IPv4Network(t, strict=False), text)
    want = reference(lambda t: IPv4Interface(t).ip, text)
    try:
        assert addresses.interface_address(text) == want
    except ValueError:
        assert want is None


@settings(max_examples=400)
@given(st.tuples(ipv6_text, prefixes).map("/".join) | ipv6_text)
def test_ipv6_networks_and_interfaces_read_as_ipaddress_reads_them(text: str) -> None:
    fresh()
    assert addresses.ipv6_net(text) == reference(lambda t: IPv6Network(t, strict=False), text)
    want = reference(lambda t: IPv6Interface(t).ip, text)
    try:
        assert addresses.interface_address6(text) == want
    except ValueError:
        assert want is None


def old_mac(text: str) -> str:
    parts = text.split(":")
    if len(parts) != 6 or not all(len(p) == 2 for p in parts):
        raise ValueError(text)
    return ":".join(f"{int(p, 16):02x}" for p in parts)


@settings(max_examples=300)
@given(macs)
def test_macs_read_as_before(text: str) -> None:
    fresh()
    want = reference(old_mac, text)
    try:
        assert addresses.mac(text) == want
    except ValueError:
        assert want is None


def test_the_canonical_forms_take_the_fast_path() -> None:
    assert addresses.ipv4_net("9.0.3.77/26") == IPv4Network("9.0.3.64/26")
    assert addresses.ipv6_net("fd01:b::4:0:0:1/80") == IPv6Network("fd01:b::4:0:0:0/80")
    assert addresses.interface_address6("fd01:a::5/64") == IPv6Interface("fd01:a::5/64").ip
    assert addresses.mac("70:B3:D5:80:00:0A") == "70:b3:d5:80:00:0a"
