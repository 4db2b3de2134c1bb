"""The firewall table on a real kernel (nft in a namespace of ours), step by step next to the
in-memory fake the unit tests use: the same writes, the same contents, incremental changes only,
zero writes when nothing changes; the table of earlier versions and hand edits."""

from __future__ import annotations

import copy
from ipaddress import IPv4Network
from typing import Any

import pytest

from overlay_agent.desired import Masquerade
from overlay_agent.firewall import Firewall
from overlay_agent.isolation import isolation
from tests.fakes.firewall import FakeFirewall
from tests.netns.topology import Bed, sh

pytestmark = pytest.mark.netns

DCOS = {"name": "dcos", "subnet": "9.0.0.0/8", "subnet6": "fd01:b::/64"}
APPS = {"name": "apps", "subnet": "10.128.0.0/16"}


def masquerade(*subnets: str) -> Masquerade:
    nets = frozenset(IPv4Network(s) for s in subnets)
    return Masquerade(nets, nets)


def network(*overlays: dict[str, Any]) -> dict[str, Any]:
    return {"overlays": [copy.deepcopy(o) for o in overlays]}


STEPS: list[tuple[str, Masquerade | None, dict[str, Any], bool]] = [
    ("first pass", masquerade("9.0.0.0/8"), network(DCOS), True),
    ("nothing new", masquerade("9.0.0.0/8"), network(DCOS), False),
    ("a network added", masquerade("9.0.0.0/8", "10.128.0.0/16"), network(DCOS, APPS), True),
    (
        "allow_from",
        masquerade("9.0.0.0/8", "10.128.0.0/16"),
        network(DCOS, {**APPS, "allow_from": ["dcos"]}),
        True,
    ),
    (
        "same again",
        masquerade("9.0.0.0/8", "10.128.0.0/16"),
        network(DCOS, {**APPS, "allow_from": ["dcos"]}),
        False,
    ),
    ("dcos deleted", masquerade("10.128.0.0/16"), network(APPS), True),
    ("no bridges left", None, network(APPS), True),
    ("still none", None, network(APPS), False),
    ("back", masquerade("10.128.0.0/16"), network(APPS), True),
]


def test_real_table_and_fake_agree_step_by_step(bed: Bed) -> None:
    ns = bed.netns("fw")
    real, fake = Firewall(ns), FakeFirewall()
    for what, masq, net, writes in STEPS:
        iso = isolation(net)
        assert (real.ensure(masq, iso), fake.ensure(masq, iso)) == (writes, writes), what
        assert real.writes == fake.writes, what
        assert real.observe() == fake.table, what
    listed = sh("ip", "netns", "exec", ns, "nft", "list", "tables").stdout
    assert listed.strip() == "table inet overlay_agent"


def test_the_old_table_goes_once_and_a_foreign_one_stays(bed: Bed) -> None:
    ns = bed.netns("fw")
    sh("ip", "netns", "exec", ns, "nft", "add", "table", "ip", "overlay_agent")  # earlier versions
    sh("ip", "netns", "exec", ns, "nft", "add", "table", "inet", "someone_else")
    fw = Firewall(ns)
    assert fw.ensure(masquerade("9.0.0.0/8"), isolation(network(DCOS)))
    assert fw.writes == 1  # the old table deleted in the same transaction
    tables = set(sh("ip", "netns", "exec", ns, "nft", "list", "tables").stdout.splitlines())
    assert tables == {"table inet overlay_agent", "table inet someone_else"}
    assert not fw.ensure(masquerade("9.0.0.0/8"), isolation(network(DCOS)))


def test_a_rule_edited_by_hand_is_put_back_by_replacing_the_table(bed: Bed) -> None:
    ns = bed.netns("fw")
    fw = Firewall(ns)
    want = (masquerade("9.0.0.0/8"), isolation(network(DCOS, APPS)))
    fw.ensure(*want)
    sh(
        "ip",
        "netns",
        "exec",
        ns,
        "nft",
        "insert",
        "rule",
        "inet",
        "overlay_agent",
        "forward",
        "accept",
    )
    assert fw.observe() is None  # not ours any more
    assert fw.ensure(*want) and fw.writes == 2
    assert fw.observe() is not None and not fw.ensure(*want)
    forward = sh(
        "ip", "netns", "exec", ns, "nft", "list", "chain", "inet", "overlay_agent", "forward"
    )
    assert "\t\taccept\n" not in forward.stdout
