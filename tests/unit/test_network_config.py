"""Every validation rule: a config that breaks it, and one that just passes."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
import yaml

from overlay_master.config import default_network, load_network, parse_text
from overlay_master.errors import ConfigError
from overlay_master.network import capacity_summary, to_plain
from overlay_master.validation import parse_network

pytestmark = pytest.mark.unit

BASE: dict[str, Any] = {
    "vtep_subnet": "44.128.0.0/20",
    "vtep_mac_oui": "70:B3:D5:00:00:00",
    "overlays": [{"name": "dcos", "subnet": "9.0.0.0/8", "prefix": 26}],
}


def with_changes(**changes: Any) -> dict[str, Any]:
    doc = copy.deepcopy(BASE)
    doc.update(changes)
    return doc


def overlay(**fields: Any) -> dict[str, Any]:
    return with_changes(overlays=[{"name": "dcos", "subnet": "9.0.0.0/8", "prefix": 26, **fields}])


def problems(doc: object) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_network(doc)
    return [str(p) for p in caught.value.problems]


def test_default_is_the_seed_config() -> None:
    net = default_network()
    assert str(net.vtep_subnet) == "44.128.0.0/20"
    assert net.vtep_mac_oui == "70:B3:D5:00:00:00"
    assert [(o.name, str(o.subnet), o.prefix, o.enabled) for o in net.overlays] == [
        ("dcos", "9.0.0.0/8", 26, True)
    ]


def test_dcos_config_yaml_and_bare_block_are_equivalent() -> None:
    bare = parse_network(BASE)
    wrapped = parse_network(
        {"cluster_name": "x", "master_list": ["10.0.0.1"], "dcos_overlay_network": BASE}
    )
    as_json_string = parse_network({"dcos_overlay_network": json.dumps(BASE)})
    assert bare == wrapped == as_json_string


def test_name_of_13_characters_passes_14_fails() -> None:
    assert parse_network(overlay(name="a" * 13)).overlays[0].name == "a" * 13
    found = problems(overlay(name="a" * 14))
    assert len(found) == 1 and "overlays[0].name" in found[0] and "at most 13" in found[0]


@pytest.mark.parametrize("name", ["host", "bridge", "default", "none"])
def test_reserved_names(name: str) -> None:
    assert "reserved network name" in problems(overlay(name=name))[0]


def test_reserved_check_is_exact() -> None:
    assert parse_network(overlay(name="hosts")).overlays[0].name == "hosts"


@pytest.mark.parametrize("name", ["a b", "a/b", "-dcos", ""])
def test_names_that_cannot_become_interface_names(name: str) -> None:
    assert "letters, digits" in problems(overlay(name=name))[0]


def test_duplicate_names() -> None:
    doc = with_changes(
        overlays=[
            {"name": "dcos", "subnet": "9.0.0.0/8", "prefix": 26},
            {"name": "dcos", "subnet": "10.0.0.0/8", "prefix": 24},
        ]
    )
    assert any("duplicate overlay" in p for p in problems(doc))


def test_overlapping_overlays_ipv4_and_ipv6() -> None:
    doc = with_changes(
        overlays=[
            {
                "name": "a",
                "subnet": "9.0.0.0/8",
                "prefix": 26,
                "subnet6": "fd01:b::/64",
                "prefix6": 80,
            },
            {"name": "b", "subnet": "9.128.0.0/9", "prefix": 24},
            {"name": "c", "subnet6": "fd01:b::/96", "prefix6": 120},
        ]
    )
    found = problems(doc)
    assert len(found) == 2
    assert "'b'" in found[0] and "overlaps" in found[0]
    assert "'c'" in found[1] and "fd01:b::/64" in found[1]


def test_adjacent_overlays_pass() -> None:
    doc = with_changes(
        overlays=[
            {"name": "a", "subnet": "9.0.0.0/9", "prefix": 26},
            {"name": "b", "subnet": "9.128.0.0/9", "prefix": 24},
        ]
    )
    assert len(parse_network(doc).overlays) == 2


def test_vtep_subnet_prefix_8_passes_7_fails() -> None:
    assert str(parse_network(with_changes(vtep_subnet="44.0.0.0/8")).vtep_subnet) == "44.0.0.0/8"
    assert "unique" in problems(with_changes(vtep_subnet="44.0.0.0/7"))[0]


def test_vtep_subnet_must_hold_an_address() -> None:
    assert parse_network(with_changes(vtep_subnet="44.128.0.0/30")).vtep_subnet.prefixlen == 30
    assert "/30 or shorter" in problems(with_changes(vtep_subnet="44.128.0.0/31"))[0]


def test_vtep_subnet_overlapping_an_overlay() -> None:
    found = problems(with_changes(vtep_subnet="9.1.0.0/20"))
    assert len(found) == 1 and "vtep_subnet" in found[0] and "overlaps" in found[0]


@pytest.mark.parametrize(
    ("oui", "rule"),
    [
        ("70:B3:D5:00:00", "format xx:xx:xx:00:00:00"),
        ("70:B3:D5:00:00:00:00", "format xx:xx:xx:00:00:00"),
        ("70:B3:G5:00:00:00", "format xx:xx:xx:00:00:00"),
        ("70:B3:D5:00:00:01", "least significant three bytes"),
        ("71:B3:D5:00:00:00", "multicast"),
    ],
)
def test_bad_oui(oui: str, rule: str) -> None:
    assert rule in problems(with_changes(vtep_mac_oui=oui))[0]


def test_oui_any_case_passes_and_keeps_the_operators_text() -> None:
    assert (
        parse_network(with_changes(vtep_mac_oui="70:b3:d5:00:00:00")).vtep_mac_oui
        == "70:b3:d5:00:00:00"
    )


def test_no_overlays() -> None:
    assert "at least one overlay" in problems(with_changes(overlays=[]))[0]
    doc = copy.deepcopy(BASE)
    del doc["overlays"]
    assert "at least one overlay" in problems(doc)[0]


def test_prefix_required_with_subnet() -> None:
    doc = with_changes(overlays=[{"name": "dcos", "subnet": "9.0.0.0/8"}])
    assert "prefix: None: is required with subnet" in problems(doc)[0]


@pytest.mark.parametrize(("prefix", "ok"), [(8, True), (30, True), (7, False), (31, False)])
def test_prefix_bounds(prefix: int, ok: bool) -> None:
    if ok:
        assert parse_network(overlay(prefix=prefix)).overlays[0].prefix == prefix
    else:
        assert "between the subnet's own prefix (8) and 30" in problems(overlay(prefix=prefix))[0]


@pytest.mark.parametrize(("prefix6", "ok"), [(64, True), (126, True), (63, False), (127, False)])
def test_prefix6_bounds(prefix6: int, ok: bool) -> None:
    doc = overlay(subnet6="fd01:b::/64", prefix6=prefix6)
    if ok:
        assert parse_network(doc).overlays[0].prefix6 == prefix6
    else:
        assert "between the subnet6's own prefix (64) and 126" in problems(doc)[0]


def test_prefix_without_subnet() -> None:
    doc = with_changes(
        overlays=[{"name": "v6", "subnet6": "fd01:b::/64", "prefix6": 80, "prefix": 24}]
    )
    assert "without a subnet" in problems(doc)[0]


def test_ipv6_only_overlay_passes() -> None:
    doc = with_changes(overlays=[{"name": "dcos6", "subnet6": "fd01:b::/64", "prefix6": 80}])
    assert parse_network(doc).overlays[0].subnet is None


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"vtep_subnet": "44.128.0.1/20"}, "vtep_subnet"),
        ({"vtep_subnet6": "fd01:a::1/64"}, "vtep_subnet6"),
    ],
)
def test_host_bits_set(changes: dict[str, str], field: str) -> None:
    found = problems(with_changes(**changes))
    assert found[0].startswith(field) and "host bits" in found[0]


def test_host_bits_in_overlay_subnet_names_the_fix() -> None:
    found = problems(overlay(subnet="9.0.0.1/8"))
    assert "host bits" in found[0] and "9.0.0.0/8" in found[0]


def test_unknown_keys_at_both_levels() -> None:
    found = problems(
        with_changes(
            vtep_subnett="x",
            overlays=[{"name": "dcos", "subnet": "9.0.0.0/8", "prefix": 26, "mtu": 1}],
        )
    )
    assert len(found) == 2
    assert found[0].startswith("vtep_subnett") and "unknown key" in found[0]
    assert found[1].startswith("overlays[0].mtu") and "unknown key" in found[1]


@pytest.mark.parametrize(
    ("doc", "fragment"),
    [
        (overlay(prefix="26"), "prefix: '26': must be an integer"),
        (overlay(prefix=True), "must be an integer"),
        (overlay(enabled="yes"), "must be true or false"),
        (overlay(subnet=9), "IPv4 CIDR"),
        (overlay(subnet="fd01::/64"), "must be an IPv4 CIDR, not IPv6"),
        (with_changes(vtep_mtu="1500"), "vtep_mtu: '1500': must be an integer"),
        (with_changes(vtep_mtu=551), "between 552"),
        (with_changes(overlays={"name": "dcos"}), "must be a list"),
        (["not", "a", "mapping"], "must be a mapping"),
    ],
)
def test_wrong_types(doc: object, fragment: str) -> None:
    assert any(fragment in p for p in problems(doc))


def test_all_problems_reported_at_once() -> None:
    doc = {
        "vtep_subnet": "44.128.0.0/7",
        "vtep_mac_oui": "70:B3:D5:00:00:01",
        "overlays": [
            {"name": "host", "subnet": "9.0.0.0/8", "prefix": 26},
            {"name": "x" * 20, "subnet": "10.0.0.0/8"},
        ],
    }
    found = problems(doc)
    assert len(found) >= 4
    for fragment in ("vtep_subnet", "vtep_mac_oui", "reserved", "at most 13"):
        assert any(fragment in p for p in found), fragment


def test_enabled_defaults_to_true_and_false_is_kept() -> None:
    net = parse_network(overlay(enabled=False))
    assert net.overlays[0].enabled is False
    assert to_plain(parse_network(BASE))["overlays"][0]["enabled"] is True


def test_load_from_file_and_unreadable_file(tmp_path: Any) -> None:
    path = tmp_path / "net.yaml"
    path.write_text(yaml.safe_dump({"dcos_overlay_network": BASE}))
    assert load_network(path) == parse_network(BASE)
    with pytest.raises(ConfigError, match="cannot be read"):
        load_network(tmp_path / "missing.yaml")
    with pytest.raises(ConfigError, match="not valid YAML"):
        parse_text("overlays: [unclosed")


def test_capacity_summary_of_the_default() -> None:
    lines = capacity_summary(default_network())
    assert lines[0] == "vtep_subnet 44.128.0.0/20: 4094 VTEP addresses (agents and masters)"
    assert "4094 agents fit (262144 blocks), 29 Mesos + 29 Docker containers per agent" in lines[1]


def test_to_plain_round_trips() -> None:
    doc = with_changes(
        vtep_subnet6="fd01:a::/64",
        vtep_mtu=1450,
        overlays=[
            {
                "name": "dcos",
                "subnet": "9.0.0.0/8",
                "prefix": 26,
                "subnet6": "fd01:b::/64",
                "prefix6": 80,
                "enabled": False,
            }
        ],
    )
    net = parse_network(doc)
    assert parse_network(to_plain(net)) == net
