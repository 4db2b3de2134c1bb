"""Isolation between networks (pure) and the firewall table's text: what the sets hold, the
incremental changes, and reading back what ``nft -j`` 1.0.6 really printed for our table
(golden/firewall-nft-1.0.6.json, captured from a namespace), including tables that are not ours
any more. The same table on a real kernel: tests/netns/test_agent_firewall.py."""

from __future__ import annotations

import copy
import json
from ipaddress import ip_network
from pathlib import Path
from typing import Any

import pytest

from overlay_agent import firewall
from overlay_agent.desired import Masquerade
from overlay_agent.isolation import Isolation, Net, isolation

pytestmark = pytest.mark.unit

GOLDEN = Path(__file__).with_name("golden") / "firewall-nft-1.0.6.json"


def n(text: str) -> Net:
    return ip_network(text)


NETWORK = {
    "overlays": [
        {"name": "dcos", "subnet": "9.0.0.0/8", "subnet6": "fd01:b::/64"},
        {"name": "apps", "subnet": "10.99.0.0/16", "allow_from": ["dcos"]},
        {"name": "one", "subnet": "10.98.0.7/32"},
    ]
}
MASQUERADE = Masquerade(
    frozenset({n("9.0.0.0/8")}),  # type: ignore[arg-type]
    frozenset({n("9.0.0.0/8"), n("10.99.0.0/16"), n("10.98.0.7/32")}),  # type: ignore[arg-type]
)


def test_a_network_reaches_itself_and_allow_from_opens_one_direction() -> None:
    got = isolation(NETWORK)
    assert got.overlays == {n("9.0.0.0/8"), n("fd01:b::/64"), n("10.99.0.0/16"), n("10.98.0.7/32")}
    assert got.allowed == {
        (n("9.0.0.0/8"), n("9.0.0.0/8")),
        (n("fd01:b::/64"), n("fd01:b::/64")),
        (n("10.99.0.0/16"), n("10.99.0.0/16")),
        (n("10.98.0.7/32"), n("10.98.0.7/32")),
        (n("9.0.0.0/8"), n("10.99.0.0/16")),  # dcos -> apps, never apps -> dcos
    }


def test_allow_from_pairs_only_the_families_both_networks_have() -> None:
    network = {
        "overlays": [
            {"name": "a", "subnet": "9.0.0.0/8", "subnet6": "fd01:a::/64"},
            {"name": "b", "subnet6": "fd01:b::/64", "allow_from": ["a", "nosuch"]},
        ]
    }
    assert isolation(network).allowed == {
        (n("9.0.0.0/8"), n("9.0.0.0/8")),
        (n("fd01:a::/64"), n("fd01:a::/64")),
        (n("fd01:b::/64"), n("fd01:b::/64")),
        (n("fd01:a::/64"), n("fd01:b::/64")),
    }


def test_malformed_and_overlapping_networks_are_left_out() -> None:
    network = {
        "overlays": [
            {"name": "dcos", "subnet": "9.0.0.0/8"},
            {"name": "inside", "subnet": "9.1.0.0/16"},  # overlaps dcos: the kernel would refuse
            {"name": "bad", "subnet": "not a network", "allow_from": "dcos"},
            {"subnet": "10.0.0.0/8"},
            "junk",
        ]
    }
    got = isolation(network)
    assert got.overlays == {n("9.0.0.0/8")}
    assert got.allowed == {(n("9.0.0.0/8"), n("9.0.0.0/8"))}
    assert isolation(None) == isolation({"overlays": "junk"}) == Isolation(frozenset(), frozenset())


def test_contents_split_the_families_and_collapse_what_overlaps() -> None:
    masquerade = Masquerade(
        frozenset({n("9.0.0.0/9"), n("9.128.0.0/9")}),  # type: ignore[arg-type]
        frozenset({n("9.0.0.0/8"), n("9.0.0.0/9")}),  # type: ignore[arg-type]
    )
    got = firewall.contents(masquerade, isolation(NETWORK))
    assert got["sources4"] == {n("9.0.0.0/8")}
    assert got["overlays4"] == {n("9.0.0.0/8"), n("10.99.0.0/16"), n("10.98.0.7/32")}
    assert got["overlays6"] == {n("fd01:b::/64")} and got["sources6"] == frozenset()
    assert got["allowed6"] == {(n("fd01:b::/64"), n("fd01:b::/64"))}
    assert len(got["allowed4"]) == 4


def test_changes_are_element_additions_and_deletions_or_nothing() -> None:
    before = firewall.contents(MASQUERADE, isolation(NETWORK))
    assert firewall.changes(before, before) == ""
    grown = copy.deepcopy(NETWORK)
    grown["overlays"].append({"name": "new", "subnet": "10.97.0.0/16", "allow_from": ["apps"]})
    grown["overlays"][1]["allow_from"] = []
    after = firewall.contents(MASQUERADE, isolation(grown))
    assert firewall.changes(before, after) == (
        "add element inet overlay_agent overlays4 { 10.97.0.0/16 }\n"
        "delete element inet overlay_agent allowed4 { 9.0.0.0/8 . 10.99.0.0/16 }\n"
        "add element inet overlay_agent allowed4 "
        "{ 10.97.0.0/16 . 10.97.0.0/16, 10.99.0.0/16 . 10.97.0.0/16 }\n"
    )


def test_render_defines_every_set_and_rule_in_one_transaction() -> None:
    text = firewall.render(firewall.contents(MASQUERADE, isolation(NETWORK)))
    assert text.startswith("table inet overlay_agent\ndelete table inet overlay_agent\n")
    assert "set allowed4 { type ipv4_addr . ipv4_addr; flags interval; elements = {" in text
    assert "set sources6 { type ipv6_addr; flags interval;  }" in text
    assert text.count("masquerade comment") == 2
    assert text.count('drop comment "overlay-agent isolation"') == 2
    assert text.count("fib saddr . iif oif missing") == 2
    assert text.count('drop comment "overlay-agent source in no network"') == 2
    assert "ct state established ct direction reply accept" in text


def golden() -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(GOLDEN.read_text())
    return doc


def test_the_table_nft_printed_reads_back_as_what_was_written() -> None:
    # counters in the golden file are non-zero: traffic must not make the table look foreign
    assert firewall.parse(golden()) == firewall.contents(MASQUERADE, isolation(NETWORK))


def item(doc: dict[str, Any], kind: str, name: str) -> dict[str, Any]:
    for entry in doc["nftables"]:
        if kind in entry and entry[kind].get("name", entry[kind].get("comment")) == name:
            found: dict[str, Any] = entry[kind]
            return found
    raise AssertionError(f"no {kind} {name}")


def rules(doc: dict[str, Any], chain: str) -> list[dict[str, Any]]:
    return [e["rule"] for e in doc["nftables"] if e.get("rule", {}).get("chain") == chain]


def commented(doc: dict[str, Any], comment: str) -> dict[str, Any]:
    """The first rule with this comment."""
    found: dict[str, Any] = next(
        e["rule"] for e in doc["nftables"] if e.get("rule", {}).get("comment") == comment
    )
    return found


def edited(change: Any) -> dict[str, Any]:
    doc = golden()
    change(doc)
    return doc


@pytest.mark.parametrize(
    "change",
    [
        # a rule's operator flipped: isolation would let everything through
        lambda d: commented(d, firewall.ISOLATION_COMMENT)["expr"][2]["match"].update(op="=="),
        # a bridge name pattern changed: anti-spoofing would miss every packet
        lambda d: commented(d, firewall.SPOOFING_COMMENT)["expr"][0]["match"].update(right="x-*"),
        lambda d: d["nftables"].remove({"rule": commented(d, firewall.FOREIGN_COMMENT)}),
        # an accept rule added by hand
        lambda d: d["nftables"].append({"rule": {**rules(d, "forward")[1], "handle": 99}}),
        # the exemption widened to every established packet (the original design's hole)
        lambda d: rules(d, "forward")[0]["expr"].pop(1),
        lambda d: item(d, "chain", "forward").update(policy="drop"),
        lambda d: item(d, "chain", "prerouting").update(prio=-300),
        lambda d: item(d, "set", "allowed4").update(flags=[]),
        lambda d: d["nftables"].remove({"chain": item(d, "chain", "prerouting")}),
        lambda d: rules(d, "postrouting")[0].update(comment="something else"),
    ],
)
def test_a_table_changed_in_any_other_way_is_not_ours(change: Any) -> None:
    assert firewall.parse(edited(change)) is None
