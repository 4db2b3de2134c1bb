"""The agent's own nftables table ``inet overlay_agent``: egress masquerade and isolation between
virtual networks, for IPv4 and IPv6.

- Egress (unchanged from DC/OS's recipe): traffic from this agent's overlays to anything that is
  not an overlay is masqueraded; overlay-to-overlay traffic keeps its source.
- Isolation (``isolation``): forwarded traffic between two overlay addresses is dropped unless
  the (source space, destination space) pair is allowed; replies to allowed connections pass.

Design notes
------------
* The rules never change; what changes is the content of six kernel sets (``sources``,
  ``overlays``, ``allowed``, per family). A pass observes the table once (``nft -j list``); if the
  structure is ours, only the set elements that differ are added or deleted, all in ONE atomic
  ``nft -f`` transaction; if anything else differs (a rule edited by hand, the table missing),
  the table is replaced whole in one transaction. A pass with nothing to change writes nothing.
* Nothing outside the table is read or written. The table of earlier versions (``ip
  overlay_agent``, egress only) is deleted once when found. Commands run inside ``--netns``
  through ``ip netns exec``.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass, field
from ipaddress import ip_network
from typing import Any

from overlay_agent.desired import Masquerade
from overlay_agent.errors import KernelError
from overlay_agent.isolation import Isolation, Net

TABLE = "overlay_agent"
FAMILY = "inet"
LEGACY = ("ip", TABLE)
MASQUERADE_COMMENT = "overlay-agent egress masquerade"
ISOLATION_COMMENT = "overlay-agent isolation"
TIMEOUT = 10.0
FAMILIES = {4: ("ip", "ipv4_addr"), 6: ("ip6", "ipv6_addr")}
# set name -> (family version, element kind: "net" or "pair")
SETS = {
    f"{kind}{v}": (v, "pair" if kind == "allowed" else "net")
    for v in (4, 6)
    for kind in ("sources", "overlays", "allowed")
}
Element = Net | tuple[Net, Net]
Contents = dict[str, frozenset[Element]]


def contents(masquerade: Masquerade, isolation: Isolation) -> Contents:
    """What each set holds for this masquerade and isolation."""

    def of(version: int, items: Iterable[Element]) -> frozenset[Element]:
        return frozenset(e for e in items if _version(e) == version)

    overlays = masquerade.overlays | isolation.overlays
    return {
        **{f"sources{v}": of(v, masquerade.sources) for v in (4, 6)},
        **{f"overlays{v}": of(v, overlays) for v in (4, 6)},
        **{f"allowed{v}": of(v, isolation.allowed) for v in (4, 6)},
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
            return _parse(json.loads(done.stdout))
        except (ValueError, KeyError, TypeError):
            return None

    def ensure(self, masquerade: Masquerade | None, isolation: Isolation | None) -> bool:
        """Make the table implement these (no masquerade: no table). True if anything was written."""
        script = self._legacy_cleanup()
        if masquerade is None:
            if self._nft(["list", "table", FAMILY, TABLE], check=False).returncode == 0:
                script += f"table {FAMILY} {TABLE}\ndelete table {FAMILY} {TABLE}\n"
        else:
            want = contents(masquerade, isolation or Isolation(frozenset(), frozenset()))
            seen = self.observe()
            script += render(want) if seen is None else changes(seen, want)
        if not script:
            return False
        self.writes += 1
        self._nft(["-f", "-"], stdin=script)
        return True

    def _legacy_cleanup(self) -> str:
        if self._legacy_checked:
            return ""
        self._legacy_checked = True
        if self._nft(["list", "table", *LEGACY], check=False).returncode != 0:
            return ""
        return f"delete table {' '.join(LEGACY)}\n"

    def _nft(
        self, args: list[str], stdin: str | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        prefix = ["ip", "netns", "exec", self.netns] if self.netns else []
        try:
            done = subprocess.run(
                [*prefix, "nft", *args],
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
    masquerade = "".join(
        f"    {ip} saddr @sources{v} {ip} daddr != @overlays{v} counter masquerade"
        f' comment "{MASQUERADE_COMMENT}"\n'
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
        f"table {FAMILY} {TABLE} {{\n" + "".join(sets) + "  chain postrouting {\n"
        "    type nat hook postrouting priority srcnat; policy accept;\n" + masquerade + "  }\n"
        "  chain forward {\n"
        "    type filter hook forward priority filter; policy accept;\n"
        "    ct state established,related accept\n" + isolate + "  }\n"
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


def _version(element: Element) -> int:
    return element[0].version if isinstance(element, tuple) else element.version


# -- reading the table back -----------------------------------------------------------------------


def _parse(doc: dict[str, Any]) -> Contents | None:
    items = doc["nftables"]
    sets = {i["set"]["name"]: i["set"] for i in items if "set" in i}
    chains = {i["chain"]["name"]: i["chain"] for i in items if "chain" in i}
    rules = [i["rule"] for i in items if "rule" in i]
    if set(sets) != set(SETS) or set(chains) != {"postrouting", "forward"}:
        return None
    if (chains["postrouting"].get("type"), chains["forward"].get("type")) != ("nat", "filter"):
        return None
    comments = sorted(str(r.get("comment")) for r in rules if r.get("comment"))
    expected = sorted([MASQUERADE_COMMENT] * 2 + [ISOLATION_COMMENT] * 2)
    if comments != expected or len(rules) != len(expected) + 1:
        return None
    return {name: frozenset(_element(e) for e in sets[name].get("elem", [])) for name in SETS}


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
