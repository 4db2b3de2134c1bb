"""PURE: the address arithmetic behind ``desired``: memoised parsers for the strings of a cluster
state, and an index of claimed networks (one per family) that answers "does this overlap a
claim?" quickly.

Both exist for speed at scale (thousands of peers, a pass every resync period): parsing the same
strings with ``ipaddress`` again on every pass, and testing every new network against every claim,
were each a large share of a pass. Nothing here does I/O.
"""

from __future__ import annotations

import re
from bisect import bisect_left, insort
from collections.abc import Iterable
from functools import lru_cache
from ipaddress import (
    IPv4Address,
    IPv4Interface,
    IPv4Network,
    IPv6Address,
    IPv6Interface,
    IPv6Network,
)
from typing import Any

Network = IPv4Network | IPv6Network


class Claims:
    """Networks of one family already taken; overlap tests in O(claimed prefix lengths *
    log claims), not O(claims).

    Networks are handled as (address int, prefix) pairs: two networks overlap exactly when one
    is a supernet of (or equal to) the other. For each prefix length that has claims (few:
    usually one per overlay) a new network is inside a claim of that length if its supernet at
    that length is claimed, and a claim of that (longer) length is inside the new network if a
    claimed address falls in the new network's range: a bisection of the sorted addresses.
    (An index of every supernet of every claim, as before, costs a prefix length's worth of
    entries per claim: 81 for an IPv6 /80.)
    """

    def __init__(self, nets: Iterable[Network], bits: int = 32) -> None:
        self._masks = _MASKS if bits == 32 else _masks(bits)
        self._claimed: set[tuple[int, int]] = set()
        self._sorted: dict[int, list[int]] = {}  # prefix length -> claimed addresses, sorted
        for net in nets:
            self.add(net)

    def add(self, net: Network) -> None:
        key = _key(net)
        if key not in self._claimed:
            self._claimed.add(key)
            insort(self._sorted.setdefault(key[1], []), key[0])

    def overlaps(self, net: Network) -> bool:
        address, length = _key(net)
        masks, claimed = self._masks, self._claimed
        last = address | (masks[length] ^ masks[-1])  # the network's last address
        for claim_length, addresses in self._sorted.items():
            if claim_length <= length:
                if (address & masks[claim_length], claim_length) in claimed:
                    return True
            else:
                i = bisect_left(addresses, address)
                if i < len(addresses) and addresses[i] <= last:
                    return True
        return False


def _key(net: Network) -> tuple[int, int]:
    return int(net.network_address), net.prefixlen


def _masks(bits: int) -> tuple[int, ...]:
    """The netmask of every prefix length 0 .. ``bits``, as integers."""
    full = (1 << bits) - 1
    return tuple((full << (bits - p)) & full for p in range(bits + 1))


_MASKS = _masks(32)


def within(net: Network, outer: Network) -> bool:
    """``net.subnet_of(outer)`` in integer arithmetic (several times cheaper); same family."""
    mask = int(outer.netmask)
    return net.prefixlen >= outer.prefixlen and int(net.network_address) & mask == int(
        outer.network_address
    )


# The parsers below are memoised: the same strings come back on every pass. They are pure, and
# the values they return are immutable, so sharing them changes nothing. Each has a fast path for
# the canonical form the masters write (dotted quads, compressed IPv6 without embedded IPv4,
# decimal prefixes without leading zeros, two-digit MACs), which builds the value from integers
# (a fraction of ``ipaddress``'s cost from text: a first pass parses every peer's strings), and
# hands anything else to ``ipaddress`` itself, so what is accepted and how it reads is unchanged.
PARSE_CACHE = 1 << 14
_OCTET = r"(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_DOTTED = re.compile(r"\.".join([_OCTET] * 4))
_CIDR = re.compile(r"\.".join([_OCTET] * 4) + r"/(3[0-2]|[12]?[0-9])")
_CIDR6 = re.compile(r"([0-9a-fA-F:]+)/(12[0-8]|1[01][0-9]|[1-9]?[0-9])")
_HEXTETS = r"[0-9a-fA-F]{1,4}(?::[0-9a-fA-F]{1,4})*"
_GROUPS6 = re.compile(rf"({_HEXTETS})?(::({_HEXTETS})?)?")
_MAC = re.compile(r"[0-9a-f]{2}(:[0-9a-f]{2}){5}", re.IGNORECASE)
_MASKS6 = _masks(128)


def _dotted(groups: tuple[str | Any, ...]) -> int:
    a, b, c, d = groups[:4]
    return int(a) << 24 | int(b) << 16 | int(c) << 8 | int(d)


def _hextets(text: str) -> int | None:
    """The value of an IPv6 address written as hex groups with at most one ``::``; None for
    any other form (left to ``ipaddress``)."""
    found = _GROUPS6.fullmatch(text)
    if found is None:
        return None
    head, gap, tail = found.groups()
    high = head.split(":") if head else []
    low = tail.split(":") if tail else []
    missing = 8 - len(high) - len(low)
    if missing < 1 if gap else missing != 0:
        return None
    digits = "".join(p.zfill(4) for p in high) + "0000" * missing
    return int(digits + "".join(p.zfill(4) for p in low), 16)


def ipv4(text: object) -> IPv4Address | None:
    """The address of ``"IP"`` or ``"IP:PORT"``; None if it is not an IPv4 address."""
    return _parse_address(str(text).split(":")[0])


@lru_cache(maxsize=PARSE_CACHE)
def _parse_address(text: str) -> IPv4Address | None:
    found = _DOTTED.fullmatch(text)
    if found is not None:
        return IPv4Address(_dotted(found.groups()))
    try:
        return IPv4Address(text)
    except ValueError:
        return None


def ipv4_net(text: object) -> IPv4Network | None:
    """The network of a CIDR string (host bits allowed); None for anything else."""
    return _parse_net(text) if isinstance(text, str) else None


@lru_cache(maxsize=PARSE_CACHE)
def _parse_net(text: str) -> IPv4Network | None:
    found = _CIDR.fullmatch(text)
    if found is not None:
        length = int(found.group(5))
        return IPv4Network((_dotted(found.groups()) & _MASKS[length], length))
    try:
        return IPv4Network(text, strict=False)
    except ValueError:
        return None


def ipv6_net(text: object) -> IPv6Network | None:
    """The IPv6 network of a CIDR string (host bits allowed); None for anything else."""
    return _parse_net6(text) if isinstance(text, str) else None


@lru_cache(maxsize=PARSE_CACHE)
def _parse_net6(text: str) -> IPv6Network | None:
    found = _CIDR6.fullmatch(text)
    value = _hextets(found.group(1)) if found is not None else None
    if found is not None and value is not None:
        length = int(found.group(2))
        return IPv6Network((value & _MASKS6[length], length))
    try:
        return IPv6Network(text, strict=False)
    except ValueError:
        return None


@lru_cache(maxsize=PARSE_CACHE)
def interface_address(text: str) -> IPv4Address:
    """``IPv4Interface(text).ip``; raises ``ValueError`` like it."""
    found = _CIDR.fullmatch(text)
    if found is not None:
        return IPv4Address(_dotted(found.groups()))
    return IPv4Interface(text).ip


@lru_cache(maxsize=PARSE_CACHE)
def interface_address6(text: str) -> IPv6Address:
    """``IPv6Interface(text).ip``; raises ``ValueError`` like it."""
    found = _CIDR6.fullmatch(text)
    value = _hextets(found.group(1)) if found is not None else None
    if value is not None:
        return IPv6Address(value)
    return IPv6Interface(text).ip


@lru_cache(maxsize=PARSE_CACHE)
def mac(text: str) -> str:
    """A MAC address in lower case with two digits per byte; raises ``ValueError`` if malformed."""
    if _MAC.fullmatch(text):
        return text.lower()
    parts = text.split(":")
    if len(parts) != 6 or not all(len(p) == 2 for p in parts):
        raise ValueError(f"not a MAC address: {text!r}")
    return ":".join(f"{int(p, 16):02x}" for p in parts)


def forget_parsed() -> None:
    """Empty the parser memos, as in a fresh process (benchmarks of a first pass use this)."""
    memos = (_parse_address, _parse_net, _parse_net6, interface_address, interface_address6, mac)
    for memo in memos:
        memo.cache_clear()
