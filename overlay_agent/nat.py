"""Egress masquerade in an nftables table of the agent's own (``ip overlay_agent``).

Traffic from the subnets of this agent's overlays to anything that is not an overlay subnet is
masqueraded; overlay-to-overlay traffic keeps its source (DC/OS's ipset ``nomatch`` trick, done
with two interval sets). The table is observed on every reconcile and, if it differs in any way
from what is wanted, replaced in one atomic ``nft -f`` transaction. Nothing outside the table is
ever read or written. Commands run inside ``--netns`` through ``ip netns exec``.
IPv4 only: the IPv6 spaces of a ``Masquerade`` are left to ``firewall`` (its ``inet`` table
replaces this one).
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass, replace
from ipaddress import IPv4Network, IPv6Network
from typing import Any

from overlay_agent.desired import Masquerade
from overlay_agent.errors import KernelError

TABLE = "overlay_agent"
RULE_COMMENT = "overlay-agent egress masquerade"
TIMEOUT = 10.0


@dataclass
class Nat:
    netns: str | None
    writes: int = 0

    def observe(self) -> Masquerade | None:
        """What our table implements now; None if it is absent or not in our exact shape."""
        done = self._nft(["-j", "list", "table", "ip", TABLE], check=False)
        if done.returncode != 0:
            return None
        try:
            return _parse(json.loads(done.stdout))
        except (ValueError, KeyError, TypeError):
            return None

    def exists(self) -> bool:
        return self._nft(["list", "table", "ip", TABLE], check=False).returncode == 0

    def ensure(self, want: Masquerade | None) -> bool:
        """Make the table implement ``want`` (None: no table). True if anything was written."""
        want = _ipv4(want)
        if want is None:
            if not self.exists():
                return False
            script = f"table ip {TABLE}\ndelete table ip {TABLE}\n"
        elif self.observe() == want:
            return False
        else:
            script = render(want)
        self.writes += 1
        self._nft(["-f", "-"], stdin=script)
        return True

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


def render(want: Masquerade) -> str:
    """One atomic transaction: create-if-missing, delete, define (so stale content never stays)."""
    return (
        f"table ip {TABLE}\n"
        f"delete table ip {TABLE}\n"
        f"table ip {TABLE} {{\n"
        f"  set sources {{ type ipv4_addr; flags interval; {_elements(want.sources)} }}\n"
        f"  set overlays {{ type ipv4_addr; flags interval; {_elements(want.overlays)} }}\n"
        "  chain postrouting {\n"
        "    type nat hook postrouting priority srcnat; policy accept;\n"
        f'    ip saddr @sources ip daddr != @overlays counter masquerade comment "{RULE_COMMENT}"\n'
        "  }\n"
        "}\n"
    )


def _ipv4(want: Masquerade | None) -> Masquerade | None:
    if want is None:
        return None
    v4 = frozenset(n for n in want.sources if n.version == 4)
    return replace(want, sources=v4, overlays=frozenset(n for n in want.overlays if n.version == 4))


def _elements(nets: Iterable[IPv4Network | IPv6Network]) -> str:
    ours = (n for n in nets if n.version == 4)
    items = ", ".join(
        str(n) for n in sorted(ours, key=lambda n: (int(n.network_address), n.prefixlen))
    )
    return f"elements = {{ {items} }};" if items else ""


def _parse(doc: dict[str, Any]) -> Masquerade | None:
    items = doc["nftables"]
    sets = {i["set"]["name"]: i["set"] for i in items if "set" in i}
    chains = [i["chain"] for i in items if "chain" in i]
    rules = [i["rule"] for i in items if "rule" in i]
    if set(sets) != {"sources", "overlays"} or len(chains) != 1 or len(rules) != 1:
        return None
    chain, rule = chains[0], rules[0]
    if (chain.get("name"), chain.get("type"), chain.get("hook")) != (
        "postrouting",
        "nat",
        "postrouting",
    ):
        return None
    if rule.get("comment") != RULE_COMMENT or not _is_our_rule(rule["expr"]):
        return None
    return Masquerade(
        sources=frozenset(_networks(sets["sources"])),
        overlays=frozenset(_networks(sets["overlays"])),
    )


def _is_our_rule(expr: list[dict[str, Any]]) -> bool:
    matches = [e["match"] for e in expr if "match" in e]
    wanted = [("==", "saddr", "@sources"), ("!=", "daddr", "@overlays")]
    seen = [(m["op"], m["left"]["payload"]["field"], m["right"]) for m in matches]
    return seen == wanted and any("masquerade" in e for e in expr)


def _networks(nft_set: dict[str, Any]) -> Iterable[IPv4Network]:
    for element in nft_set.get("elem", []):
        if isinstance(element, str):
            yield IPv4Network(element)
        elif "prefix" in element:
            yield IPv4Network(f"{element['prefix']['addr']}/{element['prefix']['len']}")
        else:
            raise ValueError(f"unexpected set element {element!r}")
