"""The demo's CNI runtime with the real plugins: a configuration list runs its plugins in order
with ``prevResult`` (portmap refuses to run unchained), a single-plugin ``.conf`` runs alone, DEL
undoes both, and a list that fails half-way is undone before the error is raised."""

from __future__ import annotations

import json
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path
from typing import Any

import pytest

from overlay_demo import cni_runtime
from overlay_demo.errors import CniError
from tests.netns.topology import Bed, ipj

pytestmark = pytest.mark.netns

SUBNET = IPv4Network("10.99.0.0/29")
PORTMAP = {"type": "portmap", "capabilities": {"portMappings": True}, "snat": True}  # the agent's


def bridge(leases: Path) -> dict[str, Any]:
    return {
        "type": "bridge",
        "bridge": "m-test",
        "isGateway": True,
        "ipam": {"type": "host-local", "subnet": str(SUBNET), "dataDir": str(leases)},
    }


def write(path: Path, doc: dict[str, Any]) -> cni_runtime.NetworkConfig:
    path.write_text(json.dumps(doc))
    return cni_runtime.NetworkConfig.load(path)


def leases(directory: Path) -> list[str]:
    net = directory / "test"
    return sorted(p.name for p in net.iterdir() if p.name[0].isdigit()) if net.exists() else []


def veths(ns: str) -> list[str]:
    return [link["ifname"] for link in ipj(ns, "-d", "link", "show", "type", "veth")]


@pytest.mark.parametrize("form", ["conflist", "conf"])
def test_attach_and_detach_with_either_form(bed: Bed, tmp_path: Path, form: str) -> None:
    host, box = bed.netns("h"), bed.netns("c")
    plugin = bridge(tmp_path / "leases")
    doc = (
        {"cniVersion": "1.0.0", "name": "test", "plugins": [plugin, PORTMAP]}
        if form == "conflist"
        else {"cniVersion": "1.0.0", "name": "test", **plugin}
    )
    config = write(tmp_path / f"test.{form}", doc)

    attached = cni_runtime.attach(config, host, container_id="box1", netns=box)

    address = IPv4Address(attached.address)
    assert address in SUBNET
    (eth0,) = ipj(box, "addr", "show", "dev", "eth0")
    assert [i["local"] for i in eth0["addr_info"] if i["family"] == "inet"] == [str(address)]
    assert leases(tmp_path / "leases") == [str(address)]
    assert len(veths(host)) == 1  # the host end, in the host namespace

    assert cni_runtime.detach(attached) == []
    assert leases(tmp_path / "leases") == []
    assert veths(host) == []


def test_a_list_failing_half_way_is_undone(bed: Bed, tmp_path: Path) -> None:
    host, box = bed.netns("h"), bed.netns("c")
    doc = {
        "cniVersion": "1.0.0",
        "name": "test",
        "plugins": [bridge(tmp_path / "leases"), {"type": "tuning", "sysctl": {"net.nosuch": "1"}}],
    }
    config = write(tmp_path / "test.conflist", doc)
    with pytest.raises(CniError, match=r"CNI ADD tuning for box1 on test: .*nosuch"):
        cni_runtime.attach(config, host, container_id="box1", netns=box)
    assert leases(tmp_path / "leases") == []
    assert veths(host) == []
