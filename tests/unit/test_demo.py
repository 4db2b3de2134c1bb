"""The demo's pure parts: reading CNI configs (either form) and what each plugin is fed, when the
agents are left out and why, the namespace prefix rule, and the deadline of a start-up wait."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from overlay_demo.cli import masters_only_reason
from overlay_demo.cni_runtime import Attachment, NetworkConfig, find_config
from overlay_demo.errors import CniError, HostError, Interrupted, StartError
from overlay_demo.hosts import agent_interface, check_prefix
from overlay_demo.stopping import Stopping

pytestmark = pytest.mark.unit

BRIDGE = {"type": "bridge", "bridge": "m-dcos", "ipam": {"type": "host-local"}}
PORTMAP = {"type": "portmap", "capabilities": {"portMappings": True}}


def test_a_conflist_is_its_plugins_each_fed_the_list_name_version_and_previous_result() -> None:
    doc = {"cniVersion": "1.0.0", "name": "dcos", "plugins": [BRIDGE, PORTMAP]}
    config = NetworkConfig.parse(json.dumps(doc), "dcos.conflist")
    assert (config.name, config.cni_version, config.plugins) == ("dcos", "1.0.0", (BRIDGE, PORTMAP))
    first = json.loads(config.plugin_input(0, None))
    assert first == {**BRIDGE, "name": "dcos", "cniVersion": "1.0.0"}
    result = {"cniVersion": "1.0.0", "ips": [{"address": "9.0.0.2/27"}]}
    second = json.loads(config.plugin_input(1, result))
    assert second == {**PORTMAP, "name": "dcos", "cniVersion": "1.0.0", "prevResult": result}


def test_a_conf_is_one_plugin_fed_as_written() -> None:
    doc = {"cniVersion": "0.4.0", "name": "dcos", **BRIDGE}
    config = NetworkConfig.parse(json.dumps(doc), "dcos.conf")
    assert config.plugins == (doc,)
    assert json.loads(config.plugin_input(0, None)) == doc


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("{", "not JSON"),
        ("[]", "expected a JSON object"),
        ('{"name": "x", "cniVersion": "1.0.0", "plugins": []}', "'plugins' must be a non-empty"),
        ('{"name": "x", "cniVersion": "1.0.0", "plugins": [{}]}', "every plugin needs a 'type'"),
        ('{"cniVersion": "1.0.0", "type": "bridge"}', "'name' and 'cniVersion' must be strings"),
    ],
)
def test_a_bad_config_is_refused_naming_the_file(text: str, problem: str) -> None:
    with pytest.raises(CniError, match=f"^x.conflist: .*{problem}"):
        NetworkConfig.parse(text, "x.conflist")


def test_the_list_is_preferred_to_the_single_plugin_file(tmp_path: Path) -> None:
    assert find_config(tmp_path, "dcos") is None
    (tmp_path / "dcos.conf").write_text("{}")
    assert find_config(tmp_path, "dcos") == tmp_path / "dcos.conf"
    (tmp_path / "dcos.conflist").write_text("{}")
    assert find_config(tmp_path, "dcos") == tmp_path / "dcos.conflist"


def attachment(result: dict[str, Any]) -> Attachment:
    config = NetworkConfig("dcos", "1.0.0", (BRIDGE,))
    return Attachment(config, "a1", "c1", "c1", "eth0", result)


def test_the_container_address_is_its_first_ipv4_one() -> None:
    ips = [{"address": "fd01:b::2/81"}, {"address": "9.0.0.2/27"}, {"address": "9.0.0.3/27"}]
    assert attachment({"ips": ips}).address == "9.0.0.2"
    with pytest.raises(CniError, match="c1: the CNI result has no IPv4 address"):
        _ = attachment({"ips": ips[:1]}).address


def test_agents_run_only_as_root_with_their_tools_and_the_reason_is_given() -> None:
    present: dict[str, str | None] = {"ip": "/bin/ip", "nft": "/sbin/nft", "ping": "/bin/ping"}
    assert masters_only_reason(False, 0, present.get, lambda p: True) is None
    assert masters_only_reason(True, 0, present.get, lambda p: True) == "--masters-only"
    not_root = masters_only_reason(False, 1000, present.get, lambda p: True)
    assert not_root is not None and not_root.startswith("not root")
    without = {**present, "nft": None}
    assert masters_only_reason(False, 0, without.get, lambda p: False) == (
        "missing Debian packages for the agents: nftables containernetworking-plugins "
        "(scripts/run installs them)"
    )


@pytest.mark.parametrize("prefix", ["ovdemo-", "ovd1a2b3c-", "abc-"])
def test_a_specific_prefix_is_accepted(prefix: str) -> None:
    assert check_prefix(prefix) == prefix


@pytest.mark.parametrize(
    "prefix", ["", "-", "ov-", "ovdemo", "OVDEMO-", "1ov-", "ov/x-", "a" * 12 + "-"]
)
def test_a_prefix_that_could_match_other_namespaces_is_refused(prefix: str) -> None:
    with pytest.raises(HostError, match="namespace prefix"):
        check_prefix(prefix)


def test_agents_get_consecutive_underlay_addresses() -> None:
    assert [str(agent_interface(k)) for k in (1, 2, 3)] == [
        "192.0.2.11/24",
        "192.0.2.12/24",
        "192.0.2.13/24",
    ]


def test_a_start_up_wait_ends_at_its_deadline_or_at_a_stop_signal() -> None:
    stopping = Stopping()
    with pytest.raises(StartError, match=r"^agent 1 ready: not within 0.05 s$"):
        stopping.wait_until("agent 1 ready", lambda: False, 0.05)
    stopping.wait_until("done at once", lambda: True, 0)
    stopping.signal = "SIGTERM"
    with pytest.raises(Interrupted, match="SIGTERM during start-up"):
        stopping.wait_until("agent 1 ready", lambda: False, 60)
