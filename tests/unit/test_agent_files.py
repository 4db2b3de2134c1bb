"""CNI config and lease accounting (files only). The nftables table: test_agent_firewall.py."""

from __future__ import annotations

import json
from dataclasses import replace
from ipaddress import IPv4Address, IPv4Interface, IPv4Network, IPv6Address, IPv6Interface
from pathlib import Path

import pytest

from overlay_agent import cni
from overlay_agent.desired import Bridge, LocalOverlay

pytestmark = pytest.mark.unit

M = Bridge("m-dcos", "dcos", IPv4Interface("9.0.0.1/27"), 1450)


def test_cni_configs_written_once_and_stale_ones_of_ours_removed(tmp_path: Path) -> None:
    cni_dir, data = tmp_path / "cni", tmp_path / "run"
    overlay = LocalOverlay("dcos", IPv4Network("9.0.0.0/26"), M, None, {})
    (cni_dir).mkdir()
    (cni_dir / "dcos.conf").write_text(json.dumps(cni.config("dcos", M, data)))  # an older agent's
    (data / "dcos").mkdir(parents=True)
    (data / "dcos" / "9.0.0.2").write_text("container-id")  # host-local's lease
    assert cni.ensure_configs(cni_dir, data, [overlay]) == 2  # the list written, the .conf gone
    assert (data / "dcos" / "9.0.0.2").exists()  # the network lives on: its leases stay
    assert cni.ensure_configs(cni_dir, data, [overlay]) == 0
    assert sorted(p.name for p in cni_dir.iterdir()) == ["dcos.conflist"]
    doc = json.loads((cni_dir / "dcos.conflist").read_text())
    assert (doc["cniVersion"], doc["name"]) == ("1.0.0", "dcos")
    bridge, portmap = doc["plugins"]
    assert (bridge["type"], bridge["bridge"], bridge["isGateway"], bridge["ipMasq"]) == (
        "bridge",
        "m-dcos",
        True,
        False,
    )
    assert bridge["ipam"] == {
        "type": "host-local",
        "ranges": [[{"subnet": "9.0.0.0/27", "gateway": "9.0.0.1"}]],
        "dataDir": str(data),
        "routes": [{"dst": "0.0.0.0/0"}],
    }
    assert portmap == {"type": "portmap", "capabilities": {"portMappings": True}, "snat": True}
    (cni_dir / "other.conf").write_text('{"type": "macvlan"}')
    (cni_dir / "other.conflist").write_text('{"plugins": [{"type": "bridge", "bridge": "m-x"}]}')
    (data / "other").mkdir()
    assert cni.ensure_configs(cni_dir, data, []) == 1
    assert sorted(p.name for p in cni_dir.iterdir()) == ["other.conf", "other.conflist"]
    assert sorted(p.name for p in data.iterdir()) == ["other"]  # only the leases of ours


def test_mesos_directory_gets_the_single_plugin_form_and_never_both(tmp_path: Path) -> None:
    cni_dir, mesos_dir, data = tmp_path / "cni", tmp_path / "mesos", tmp_path / "run"
    dual = replace(M, gateway6=IPv6Interface("fd01:b::1/81"))
    overlay = LocalOverlay("dcos", IPv4Network("9.0.0.0/26"), dual, None, {})
    assert cni.ensure_configs(cni_dir, data, [overlay], mesos_dir) == 2
    assert [p.name for p in cni_dir.iterdir()] == ["dcos.conflist"]
    assert [p.name for p in mesos_dir.iterdir()] == ["dcos.conf"]
    conf = json.loads((mesos_dir / "dcos.conf").read_text())
    (plugin, _) = json.loads((cni_dir / "dcos.conflist").read_text())["plugins"]
    assert conf == {"cniVersion": "1.0.0", "name": "dcos", **plugin}
    assert conf["ipam"]["ranges"] == [
        [{"subnet": "9.0.0.0/27", "gateway": "9.0.0.1"}],
        [{"subnet": "fd01:b::/81", "gateway": "fd01:b::1"}],
    ]
    assert conf["ipam"]["routes"] == [{"dst": "0.0.0.0/0"}, {"dst": "::/0"}]
    assert cni.ensure_configs(None, data, [overlay], mesos_dir) == 0
    assert cni.ensure_configs(cni_dir, data, [], mesos_dir) == 2
    assert list(cni_dir.iterdir()) == list(mesos_dir.iterdir()) == []


def test_capacity_counts_host_local_leases_inside_the_half(tmp_path: Path) -> None:
    leases = tmp_path / "dcos"
    leases.mkdir()
    for name in ("9.0.0.2", "9.0.0.7", "last_reserved_ip.0", "lock", "9.0.1.5"):
        (leases / name).write_text("x")
    c = cni.capacity("dcos", M, tmp_path)
    assert (c.total, c.used, c.free) == (29, 2, 27)
    assert c.addresses == (IPv4Address("9.0.0.2"), IPv4Address("9.0.0.7"))
    assert cni.capacity("none-yet", M, tmp_path).used == 0


def test_capacity_of_an_ipv6_only_bridge_counts_ipv6_leases(tmp_path: Path) -> None:
    v6 = Bridge("m-six", "six", None, 1450, IPv6Interface("fd01:b::1/120"))
    leases = tmp_path / "six"
    leases.mkdir()
    for name in ("fd01:b::2", "fd01:b::7", "9.0.0.2", "fd01:c::9", "lock"):
        (leases / name).write_text("x")
    c = cni.capacity("six", v6, tmp_path)
    assert (c.total, c.used, c.free) == (254, 2, 252)
    assert c.addresses == (IPv6Address("fd01:b::2"), IPv6Address("fd01:b::7"))
