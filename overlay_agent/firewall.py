"""The agent's own nftables table ``inet overlay_agent``: egress masquerade and isolation between
virtual networks, for IPv4 and IPv6.

- Egress (unchanged from DC/OS's recipe): traffic from this agent's overlays to anything that is
  not an overlay is masqueraded; overlay-to-overlay traffic keeps its source.
- Isolation (``isolation``): forwarded traffic between two overlay addresses is dropped unless
  the (source space, destination space) pair is allowed. Only packets in the *reply* direction of
  a tracked connection (and ICMP errors about one) pass unchecked, so ``allow_from`` opens one
  direction, and taking it back cuts connections already open (an "established" exemption would
  keep them forever).
- Anti-spoofing: a packet entering from one of our bridges (``m-*``, ``d-*``) with an overlay
  source address that is not routed back through that bridge is dropped (strict reverse path,
  ``fib``). Without it a container could borrow another network's address and pass isolation.
  A packet from our bridges whose source is in no network is not forwarded either: isolation
  knows only networks, and such a source is either forged or a container left on a deleted
  network's bridge (Docker keeps one while containers use it).

Design notes
------------
* The rules never change; what changes is the content of six kernel sets (``sources``,
  ``overlays``, ``allowed``, per family). A pass observes the table once (``nft -j list``); if the
  structure is ours (sets, chains and every rule exactly as ``render`` writes them), only the set
  elements that differ are added or deleted, all in ONE atomic ``nft -f`` transaction; if
  anything else differs (a rule edited by hand, the table missing), the table is replaced whole
  in one transaction. A pass with nothing to change writes nothing.
* Interval sets refuse overlapping elements: set contents are collapsed (``contents``), and
  ``isolation`` leaves out a network overlapping an earlier one.
* Nothing outside the table is read or written. The table of earlier versions (``ip
  overlay_agent``, egress only) is deleted once when found: the first pass lists the tables
  (one ``nft`` run tells whether either table exists), later passes list only ours. With
  ``--netns``, ``nft`` is started from the calling thread inside the namespace (``netns``).
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass, field
from ipaddress import IPv4Network, IPv6Network, collapse_addresses, ip_network
from typing import Any

from overlay_agent.desired import Masquerade
from overlay_agent.errors import KernelError
from overlay_agent.isolation import NONE, Isolation, Net
from overlay_agent.netns import inside

TABLE = "overlay_agent"
FAMILY = "inet"
LEGACY = ("ip", TABLE)
MASQUERADE_COMMENT = "overlay-agent egress masquerade"
ISOLATION_COMMENT = "overlay-agent isolation"
SPOOFING_COMMENT = "overlay-agent anti-spoofing"
FOREIGN_COMMENT = "overlay-agent source in no network"
BRIDGES = ("d-*", "m-*")  # our bridges' names, as nft lists them (sorted)
TIMEOUT = 10.0
FAMILIES = {4: ("ip", "ipv4_addr"), 6: ("ip6", "ipv6_addr")}
# set name -> (family version, element kind: "net" or "pair")
SETS = {
    f"{kind}{v}": (v, "pair" if kind == "allowed" else "net")
    for v in (4, 6)
    for kind in ("sources", "overlays", "allowed")
}
# chain name -> (type, hook, priority as nft -j reports it)
CHAINS = {
    "prerouting": ("filter", "prerouting", 0),
    "postrouting": ("nat", "postrouting", 100),
    "forward": ("filter", "forward", 0),
}
Element = Net | tuple[Net, Net]
Contents = dict[str, frozenset[Element]]


def contents(masquerade: Masquerade, isolation: Isolation) -> Contents:
    """What each set holds for this masquerade and isolation."""

    def nets(version: int, items: Iterable[Net]) -> frozenset[Element]:
        # collapsed: the kernel refuses overlapping intervals, and merges nothing itself
        if version == 4:
            return frozenset(collapse_addresses(n for n in items if isinstance(n, IPv4Network)))
        return frozenset(collapse_addresses(n for n in items if isinstance(n, IPv6Network)))

    overlays = masquerade.overlays | isolation.overlays
    return {
        **{f"sources{v}": nets(v, masquerade.sources) for v in (4, 6)},
        **{f"overlays{v}": nets(v, overlays) for v in (4, 6)},
        **{
            f"allowed{v}": frozenset(p for p in isolation.allowed if p[0].version == v)
            for v in (4, 6)
        },
    }


@dataclass
class Firewall:
    netns: str | None
    writes: int = 0
    _legacy_checked: bool = field(default=False, repr=False)

    def observe(self) -> Contents | None:
        """The sets of our table, or None if the table is absent or not in our exact shape."""
        done = self._nft(["-j", "list", "table", FAMILY, TABLE], check=False)
        if done.returncode != 0:
            return None
        try:
            return parse(json.loads(done.stdout))
        except (ValueError, KeyError, TypeError):
            return None

    def ensure(self, masquerade: Masquerade | None, isolation: Isolation = NONE) -> bool:
        """Make the table implement these (no masquerade: no bridges here, no table). True if
        anything was written. Raises ``KernelError``."""
        # First pass: one listing of the tables says whether the old one is there, and whether
        # ours is worth listing (absent on a cold start: nothing to read back).
        tables = None if self._legacy_checked else self._tables()
        ours = None if tables is None else (FAMILY, TABLE) in tables
        script = f"delete table {' '.join(LEGACY)}\n" if tables and LEGACY in tables else ""
        if masquerade is None:
            if ours is None:
                ours = self._nft(["list", "table", FAMILY, TABLE], check=False).returncode == 0
            if ours:
                script += f"table {FAMILY} {TABLE}\ndelete table {FAMILY} {TABLE}\n"
        else:
            want = contents(masquerade, isolation)
            seen = None if ours is False else self.observe()
            script += render(want) if seen is None else changes(seen, want)
        if script:
            self.writes += 1
            self._nft(["-f", "-"], stdin=script)
        self._legacy_checked = True  # only once the deletion, if any, went through
        return bool(script)

    def _tables(self) -> set[tuple[str, str]]:
        """(family, name) of every table in the namespace."""
        listed = self._nft(["-j", "list", "tables"])
        try:
            items = json.loads(listed.stdout)["nftables"]
            return {(i["table"]["family"], i["table"]["name"]) for i in items if "table" in i}
        except (ValueError, KeyError, TypeError) as e:
            raise KernelError(f"nft -j list tables printed what we cannot read: {e}") from e

    def _nft(
        self, args: list[str], stdin: str | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        try:
            with inside(self.netns):
                done = subprocess.run(
                    ["nft", *args],
                    input=stdin,
                    capture_output=True,
                    text=True,
                    timeout=TIMEOUT,
                    check=False,
                )
        except (OSError, subprocess.TimeoutExpired) as e:
            raise KernelError(f"running nft {' '.join(args)}: {e}") from e
        if check and done.returncode != 0:
            raise KernelError(f"nft {' '.join(args)} failed: {done.stderr.strip()}")
        return done


def render(want: Contents) -> str:
    """The whole table in one transaction: create-if-missing, delete, define."""
    sets = []
    for name, (version, kind) in SETS.items():
        addr = FAMILIES[version][1]
        kind_type = f"{addr} . {addr}" if kind == "pair" else addr
        sets.append(
            f"  set {name} {{ type {kind_type}; flags interval; {_elements(want[name])} }}\n"
        )
    bridges = ", ".join(f'"{b}"' for b in BRIDGES)
    spoofing = "".join(
        f"    iifname {{ {bridges} }} {ip} saddr @overlays{v} fib saddr . iif oif missing"
        f' counter drop comment "{SPOOFING_COMMENT}"\n'
        for v, (ip, _) in FAMILIES.items()
    )
    masquerade = "".join(
        f"    {ip} saddr @sources{v} {ip} daddr != @overlays{v} counter masquerade"
        f' comment "{MASQUERADE_COMMENT}"\n'
        for v, (ip, _) in FAMILIES.items()
    )
    foreign = "".join(
        f"    iifname {{ {bridges} }} {ip} saddr != @overlays{v}"
        f' counter drop comment "{FOREIGN_COMMENT}"\n'
        for v, (ip, _) in FAMILIES.items()
    )
    isolate = "".join(
        f"    {ip} saddr @overlays{v} {ip} daddr @overlays{v} {ip} saddr . {ip} daddr"
        f' != @allowed{v} counter drop comment "{ISOLATION_COMMENT}"\n'
        for v, (ip, _) in FAMILIES.items()
    )
    return (
        f"table {FAMILY} {TABLE}\n"
        f"delete table {FAMILY} {TABLE}\n"
        f"table {FAMILY} {TABLE} {{\n" + "".join(sets) + "  chain prerouting {\n"
        "    type filter hook prerouting priority filter; policy accept;\n" + spoofing + "  }\n"
        "  chain postrouting {\n"
        "    type nat hook postrouting priority srcnat; policy accept;\n" + masquerade + "  }\n"
        "  chain forward {\n"
        "    type filter hook forward priority filter; policy accept;\n"
        "    ct state established ct direction reply accept\n"
        "    ct state related accept\n" + foreign + isolate + "  }\n"
        "}\n"
    )


def changes(seen: Contents, want: Contents) -> str:
    """Element additions and deletions that turn ``seen`` into ``want`` ("" if none)."""
    lines = []
    for name in SETS:
        gone, new = seen[name] - want[name], want[name] - seen[name]
        if gone:
            lines.append(f"delete element {FAMILY} {TABLE} {name} {{ {_items(gone)} }}\n")
        if new:
            lines.append(f"add element {FAMILY} {TABLE} {name} {{ {_items(new)} }}\n")
    return "".join(lines)


def _elements(items: frozenset[Element]) -> str:
    return f"elements = {{ {_items(items)} }};" if items else ""


def _items(items: Iterable[Element]) -> str:
    return ", ".join(sorted(_text(e) for e in items))


def _text(element: Element) -> str:
    if isinstance(element, tuple):
        return f"{element[0]} . {element[1]}"
    return str(element)


# -- reading the table back -----------------------------------------------------------------------


def parse(doc: dict[str, Any]) -> Contents | None:
    """The sets' contents from ``nft -j list table``; None unless everything else is exactly
    what ``render`` writes (sets' types and flags, chains, every rule's expressions)."""
    items = doc["nftables"]
    sets = {i["set"]["name"]: i["set"] for i in items if "set" in i}
    chains = {i["chain"]["name"]: i["chain"] for i in items if "chain" in i}
    rules: dict[str, list[Any]] = {name: [] for name in chains}
    for rule in (i["rule"] for i in items if "rule" in i):
        rules.setdefault(rule["chain"], []).append([rule.get("comment"), _shape(rule["expr"])])
    if {n: (s.get("type"), s.get("flags")) for n, s in sets.items()} != _set_types():
        return None
    seen_chains = {
        n: (c.get("type"), c.get("hook"), c.get("prio"), c.get("policy")) for n, c in chains.items()
    }
    if seen_chains != {n: (*c, "accept") for n, c in CHAINS.items()} or rules != _rules():
        return None
    return {name: frozenset(_element(e) for e in sets[name].get("elem", [])) for name in SETS}


def _set_types() -> dict[str, tuple[Any, list[str]]]:
    types: dict[str, tuple[Any, list[str]]] = {}
    for name, (version, kind) in SETS.items():
        addr = FAMILIES[version][1]
        types[name] = ([addr, addr] if kind == "pair" else addr, ["interval"])
    return types


def _rules() -> dict[str, list[Any]]:
    """Every rule of ``render`` as ``nft -j`` lists it: [comment, expressions]."""

    def match(op: str, left: Any, right: Any) -> dict[str, Any]:
        return {"match": {"op": op, "left": left, "right": right}}

    def ct(key: str) -> dict[str, Any]:
        return {"ct": {"key": key}}

    def addr(ip: str, which: str) -> dict[str, Any]:
        return {"payload": {"protocol": ip, "field": which}}

    counter = {"counter": None}
    bridges = match("==", {"meta": {"key": "iifname"}}, {"set": list(BRIDGES)})
    prerouting, postrouting, foreign, forward = [], [], [], []
    for v, (ip, _) in FAMILIES.items():
        prerouting.append(
            [
                SPOOFING_COMMENT,
                [
                    bridges,
                    match("==", addr(ip, "saddr"), f"@overlays{v}"),
                    match("==", {"fib": {"result": "oif", "flags": ["saddr", "iif"]}}, False),
                    counter,
                    {"drop": None},
                ],
            ]
        )
        postrouting.append(
            [
                MASQUERADE_COMMENT,
                [
                    match("==", addr(ip, "saddr"), f"@sources{v}"),
                    match("!=", addr(ip, "daddr"), f"@overlays{v}"),
                    counter,
                    {"masquerade": None},
                ],
            ]
        )
        foreign.append(
            [
                FOREIGN_COMMENT,
                [bridges, match("!=", addr(ip, "saddr"), f"@overlays{v}"), counter, {"drop": None}],
            ]
        )
        pair = {"concat": [addr(ip, "saddr"), addr(ip, "daddr")]}
        forward.append(
            [
                ISOLATION_COMMENT,
                [
                    match("==", addr(ip, "saddr"), f"@overlays{v}"),
                    match("==", addr(ip, "daddr"), f"@overlays{v}"),
                    match("!=", pair, f"@allowed{v}"),
                    counter,
                    {"drop": None},
                ],
            ]
        )
    replies = [
        match("in", ct("state"), "established"),
        match("==", ct("direction"), "reply"),
        {"accept": None},
    ]
    related = [match("in", ct("state"), "related"), {"accept": None}]
    return {
        "prerouting": prerouting,
        "postrouting": postrouting,
        "forward": [[None, replies], [None, related], *foreign, *forward],
    }


def _shape(expressions: list[Any]) -> list[Any]:
    """Expressions without the counters' values (they change with traffic)."""
    return [{"counter": None} if "counter" in e else e for e in expressions]


def _element(element: Any) -> Element:
    if isinstance(element, dict) and "concat" in element:
        first, second = (_net(part) for part in element["concat"])
        return first, second
    return _net(element)


def _net(part: Any) -> Net:
    if isinstance(part, str):
        return ip_network(part)
    if isinstance(part, dict) and "prefix" in part:
        return ip_network(f"{part['prefix']['addr']}/{part['prefix']['len']}")
    raise ValueError(f"unexpected set element {part!r}")
