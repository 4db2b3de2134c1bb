"""PURE: the IPv4 arithmetic behind ``desired``: memoised parsers for the strings of a cluster
state, and an index of claimed networks that answers "does this overlap a claim?" quickly.

Both exist for speed at scale (thousands of peers, a pass every resync period): parsing the same
strings with ``ipaddress`` again on every pass, and testing every new network against every claim,
were each a large share of a pass. Nothing here does I/O.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache
from ipaddress import IPv4Address, IPv4Interface, IPv4Network


class Claims:
    """Networks already taken; overlap tests in O(prefix length), not O(claims).

    Networks are handled as (address int, prefix) pairs: two networks overlap exactly when one
    is a supernet of (or equal to) the other. A new network is inside a claim if one of its
    supernets at a claimed prefix length is claimed (few lengths: usually one per overlay); a
    claim is inside it if it is one of the supernets of a claim (``_covering``).
    """

    def __init__(self, nets: Iterable[IPv4Network]) -> None:
        self._claimed: set[tuple[int, int]] = set()
        self._lengths: set[int] = set()  # prefix lengths of the claims
        self._covering: set[tuple[int, int]] = set()  # every supernet of (and including) a claim
        for net in nets:
            self.add(net)

    def add(self, net: IPv4Network) -> None:
        address, length = _key(net)
        self._claimed.add((address, length))
        self._lengths.add(length)
        masks = _MASKS[: length + 1]
        self._covering.update(zip(map(address.__and__, masks), range(length + 1), strict=True))

    def overlaps(self, net: IPv4Network) -> bool:
        address, length = _key(net)
        return (address, length) in self._covering or any(
            (address & _MASKS[p], p) in self._claimed for p in self._lengths if p <= length
        )


def _key(net: IPv4Network) -> tuple[int, int]:
    return int(net.network_address), net.prefixlen


_MASKS = tuple((0xFFFFFFFF << (32 - p)) & 0xFFFFFFFF for p in range(33))  # netmask by prefix


def within(net: IPv4Network, outer: IPv4Network) -> bool:
    """``net.subnet_of(outer)`` in integer arithmetic (several times cheaper)."""
    mask = int(outer.netmask)
    return net.prefixlen >= outer.prefixlen and int(net.network_address) & mask == int(
        outer.network_address
    )


# The parsers below are memoised: the same strings come back on every pass. They are pure, and
# the values they return are immutable, so sharing them changes nothing.
PARSE_CACHE = 1 << 14


def ipv4(text: object) -> IPv4Address | None:
    """The address of ``"IP"`` or ``"IP:PORT"``; None if it is not an IPv4 address."""
    return _parse_address(str(text).split(":")[0])


@lru_cache(maxsize=PARSE_CACHE)
def _parse_address(text: str) -> IPv4Address | None:
    try:
        return IPv4Address(text)
    except ValueError:
        return None


def ipv4_net(text: object) -> IPv4Network | None:
    """The network of a CIDR string (host bits allowed); None for anything else."""
    return _parse_net(text) if isinstance(text, str) else None


@lru_cache(maxsize=PARSE_CACHE)
def _parse_net(text: str) -> IPv4Network | None:
    try:
        return IPv4Network(text, strict=False)
    except ValueError:
        return None


@lru_cache(maxsize=PARSE_CACHE)
def interface(text: str) -> IPv4Interface:
    """``IPv4Interface(text)``; raises ``ValueError`` like it."""
    return IPv4Interface(text)


@lru_cache(maxsize=PARSE_CACHE)
def mac(text: str) -> str:
    """A MAC address in lower case with two digits per byte; raises ``ValueError`` if malformed."""
    parts = text.split(":")
    if len(parts) != 6 or not all(len(p) == 2 for p in parts):
        raise ValueError(f"not a MAC address: {text!r}")
    return ":".join(f"{int(p, 16):02x}" for p in parts)


def forget_parsed() -> None:
    """Empty the parser memos, as in a fresh process (benchmarks of a first pass use this)."""
    for memo in (_parse_address, _parse_net, interface, mac):
        memo.cache_clear()
