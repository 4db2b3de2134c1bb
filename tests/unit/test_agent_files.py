"""CNI config and lease accounting (files only). The nftables table: test_agent_firewall.py."""

from __future__ import annotations

import json
from ipaddress import IPv4Address, IPv4Interface, IPv4Network
from pathlib import Path

import pytest

from overlay_agent import cni
from overlay_agent.desired import Bridge, LocalOverlay

pytestmark = pytest.mark.unit

M = Bridge("m-dcos", "dcos", IPv4Interface("9.0.0.1/27"), 1450)


def test_cni_configs_written_once_and_stale_ones_of_ours_removed(tmp_path: Path) -> None:
    cni_dir, data = tmp_path / "cni", tmp_path / "run"
    overlay = LocalOverlay("dcos", IPv4Network("9.0.0.0/26"), M, None, {})
    assert cni.ensure_configs(cni_dir, data, [overlay]) == 1
    assert cni.ensure_configs(cni_dir, data, [overlay]) == 0
    doc = json.loads((cni_dir / "dcos.conf").read_text())
    assert doc["ipam"] == {
        "type": "host-local",
        "subnet": "9.0.0.0/27",
        "gateway": "9.0.0.1",
        "dataDir": str(data),
        "routes": [{"dst": "0.0.0.0/0"}],
    }
    (cni_dir / "other.conf").write_text('{"type": "macvlan"}')
    (data / "dcos").mkdir()
    (data / "dcos" / "9.0.0.2").write_text("container-id")  # host-local's lease
    (data / "other").mkdir()
    assert cni.ensure_configs(cni_dir, data, []) == 1
    assert sorted(p.name for p in cni_dir.iterdir()) == ["other.conf"]
    assert sorted(p.name for p in data.iterdir()) == ["other"]  # only the leases of ours


def test_capacity_counts_host_local_leases_inside_the_half(tmp_path: Path) -> None:
    leases = tmp_path / "dcos"
    leases.mkdir()
    for name in ("9.0.0.2", "9.0.0.7", "last_reserved_ip.0", "lock", "9.0.1.5"):
        (leases / name).write_text("x")
    c = cni.capacity("dcos", M, tmp_path)
    assert (c.total, c.used, c.free) == (29, 2, 27)
    assert c.addresses == (IPv4Address("9.0.0.2"), IPv4Address("9.0.0.7"))
    assert cni.capacity("none-yet", M, tmp_path).used == 0
