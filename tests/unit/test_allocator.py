"""The allocator: DC/OS's allocation order, exhaustion, reuse, re-registration, status, config."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from overlay_master import allocator as A
from overlay_master import dcos_json
from overlay_master.config import default_network
from overlay_master.network import to_plain

from .allocator_helpers import check_invariants, network, registered, state_for

pytestmark = pytest.mark.unit


def test_worked_example_from_the_reference() -> None:
    state = state_for(to_plain(default_network()))
    master = registered(state, "172.17.0.2", bridges=False)
    agent = registered(state, "172.17.0.3")
    third = registered(state, "172.17.0.4")
    assert state.network is not None
    docs = [dcos_json.agent_json(r, state.network) for r in (master, agent, third)]
    assert docs[0] == {
        "ip": "172.17.0.2",
        "overlays": [
            {
                "backend": {
                    "vxlan": {
                        "vni": 1024,
                        "vtep_ip": "44.128.0.1/20",
                        "vtep_mac": "70:b3:d5:80:00:01",
                        "vtep_name": "vtep1024",
                    }
                },
                "info": {"name": "dcos", "prefix": 26, "subnet": "9.0.0.0/8"},
                "subnet": "9.0.0.0/26",
            }
        ],
    }
    second = docs[1]["overlays"][0]
    assert second["backend"]["vxlan"]["vtep_ip"] == "44.128.0.2/20"
    assert second["backend"]["vxlan"]["vtep_mac"] == "70:b3:d5:80:00:02"
    assert second["subnet"] == "9.0.0.64/26"
    assert second["mesos_bridge"] == {"ip": "9.0.0.64/27", "name": "m-dcos"}
    assert second["docker_bridge"] == {"ip": "9.0.0.96/27", "name": "d-dcos"}
    assert docs[2]["overlays"][0]["subnet"] == "9.0.0.128/26"
    assert docs[2]["overlays"][0]["backend"]["vxlan"]["vtep_ip"] == "44.128.0.3/20"


def test_state_json_is_byte_exact_dcos_shape() -> None:
    state = state_for(network())
    registered(state, "10.0.0.1")
    assert state.network is not None
    doc = dcos_json.state_json(
        [dcos_json.agent_json(r, state.network) for r in state.agents.values()], state.network
    )
    assert dcos_json.dumps(doc) == (
        b'{"agents":[{"ip":"10.0.0.1","overlays":[{"backend":{"vxlan":{"vni":1024,'
        b'"vtep_ip":"44.128.0.1/20","vtep_mac":"70:b3:d5:80:00:01","vtep_name":"vtep1024"}},'
        b'"docker_bridge":{"ip":"9.0.0.32/27","name":"d-dcos"},'
        b'"info":{"name":"dcos","prefix":26,"subnet":"9.0.0.0/8"},'
        b'"mesos_bridge":{"ip":"9.0.0.0/27","name":"m-dcos"},"subnet":"9.0.0.0/26"}]}],'
        b'"network":{"overlays":[{"enabled":true,"name":"dcos","prefix":26,"subnet":"9.0.0.0/8"}],'
        b'"vtep_mac_oui":"70:B3:D5:00:00:00","vtep_subnet":"44.128.0.0/20"}}'
    )


def test_last_vtep_mac() -> None:
    state = state_for(network(vtep_subnet="44.128.0.0/20"))
    for i in range(4094):
        record = (
            registered(state, f"10.{i // 250}.{i % 250}.1", bridges=False) if i < 4093 else None
        )
    record = registered(state, "10.200.0.1", bridges=False)
    assert record.vtep_ip == "44.128.15.254/20"
    assert record.vtep_mac == "70:b3:d5:80:0f:fe"
    check_invariants(state)


def test_vtep_pool_walked_to_exhaustion() -> None:
    """A /29 VTEP pool holds 6 addresses (network and broadcast excluded)."""
    state = state_for(network(vtep_subnet="44.128.0.0/29"))
    records = [registered(state, f"10.0.0.{i}") for i in range(1, 7)]
    assert [r.vtep_ip for r in records] == [f"44.128.0.{i}/29" for i in range(1, 7)]
    before = state.revision
    result = state.apply(A.register("10.0.0.7"))
    assert isinstance(result, A.Rejected) and result.reason == "vtep_exhausted"
    assert state.revision == before and "10.0.0.7" not in state.agents
    assert state.blocks["dcos"].used == 6  # nothing taken for the rejected agent
    assert isinstance(state.apply(A.register("10.0.0.3")), A.Registered)  # known agents still fine
    check_invariants(state)


def test_blocks_walked_to_exhaustion_first_and_last_usable() -> None:
    """A /24 in /28 blocks: 16 blocks, 9.0.0.0/28 through 9.0.0.240/28, then skipped."""
    state = state_for(
        network(
            overlays=[
                {"name": "small", "subnet": "10.1.0.0/24", "prefix": 28},
                {"name": "big", "subnet": "10.2.0.0/16", "prefix": 24},
            ]
        )
    )
    records = [registered(state, f"10.0.0.{i}") for i in range(1, 18)]
    assert [r.overlays[0].subnet for r in records[:16]] == [
        f"10.1.0.{16 * i}/28" for i in range(16)
    ]
    last = records[16]
    assert [o.name for o in last.overlays] == ["big"]
    assert last.skipped == (("small", "subnet_exhausted"),)
    assert state.network is not None
    doc = dcos_json.agent_json(last, state.network)
    assert doc["skipped_overlays"] == [
        {
            "name": "small",
            "reason": "subnet_exhausted",
            "error": "no free /28 block left in overlay small (10.1.0.0/24)",
        }
    ]
    # a block frees up: the skipped agent gets it on its next registration
    state.apply(A.delete(["10.0.0.5"]))
    again = registered(state, "10.0.0.17")
    assert again.overlay("small") is not None and again.overlay("small").subnet == "10.1.0.64/28"  # type: ignore[union-attr]
    assert again.skipped == () and again.vtep_ip == last.vtep_ip
    check_invariants(state)


def test_re_registration_returns_the_same_allocation_without_a_new_revision() -> None:
    state = state_for(network())
    first = registered(state, "10.0.0.1")
    revision = state.revision
    result = state.apply(A.register("10.0.0.1", False, False))  # bridge flags change nothing
    assert isinstance(result, A.Registered) and not result.changed
    assert result.agent == first and state.revision == revision


def test_no_bridges_gives_vtep_and_subnet_only() -> None:
    state = state_for(network())
    record = registered(state, "10.0.0.1", bridges=False)
    assert state.network is not None
    overlay = dcos_json.agent_json(record, state.network)["overlays"][0]
    assert (
        "mesos_bridge" not in overlay
        and "docker_bridge" not in overlay
        and overlay["subnet"] == "9.0.0.0/26"
    )


def test_only_one_bridge() -> None:
    state = state_for(network())
    result = state.apply(A.register("10.0.0.1", mesos_bridge=True, docker_bridge=False))
    assert isinstance(result, A.Registered) and state.network is not None
    overlay = dcos_json.agent_json(result.agent, state.network)["overlays"][0]
    assert (
        overlay["mesos_bridge"] == {"ip": "9.0.0.0/27", "name": "m-dcos"}
        and "docker_bridge" not in overlay
    )


def test_delete_reuse_order_fresh_first_then_oldest_released() -> None:
    state = state_for(
        network(
            vtep_subnet="44.128.0.0/29",
            overlays=[{"name": "o", "subnet": "10.1.0.0/24", "prefix": 27}],
        )
    )
    for i in range(1, 5):
        registered(state, f"10.0.0.{i}")  # VTEPs .1-.4, blocks 0-3
    result = state.apply(A.delete(["10.0.0.3", "10.0.0.1", "10.0.0.3", "10.9.9.9"]))
    assert isinstance(result, A.Deleted) and result.ips == ("10.0.0.3", "10.0.0.1")
    # new agents: never-used first (VTEP .5, .6; blocks 4, 5) ...
    fresh = [registered(state, f"10.0.1.{i}") for i in range(1, 3)]
    assert [r.vtep_ip for r in fresh] == ["44.128.0.5/29", "44.128.0.6/29"]
    assert [r.overlays[0].subnet for r in fresh] == ["10.1.0.128/27", "10.1.0.160/27"]
    # ... then released ones, oldest released first (.3 was released before .1)
    reused = [registered(state, f"10.0.1.{i}") for i in range(3, 5)]
    assert [r.vtep_ip for r in reused] == ["44.128.0.3/29", "44.128.0.1/29"]
    # the block pool (8 blocks) still had never-used blocks: those went first
    assert [r.overlays[0].subnet for r in reused] == ["10.1.0.192/27", "10.1.0.224/27"]
    state.apply(A.delete(["10.0.1.1"]))  # frees VTEP .5 and block 4
    last = registered(state, "10.0.2.1")
    assert (last.vtep_ip, last.overlays[0].subnet) == ("44.128.0.5/29", "10.1.0.64/27")
    check_invariants(state)


def test_deleted_agent_that_comes_back_gets_its_previous_allocation() -> None:
    state = state_for(network())
    before = [registered(state, f"10.0.0.{i}") for i in range(1, 4)]
    state.apply(A.delete(["10.0.0.2"]))
    registered(state, "10.0.0.9")  # takes fresh slots, not 10.0.0.2's
    back = registered(state, "10.0.0.2")
    assert (back.vtep_ip, back.vtep_mac, back.overlays) == (
        before[1].vtep_ip,
        before[1].vtep_mac,
        before[1].overlays,
    )
    assert list(state.agents)[-1] == "10.0.0.2"  # appended, as DC/OS does


def test_deleted_agent_comes_back_after_its_blocks_were_taken() -> None:
    state = state_for(network(vtep_subnet="44.128.0.0/30"))  # 2 VTEPs
    registered(state, "10.0.0.1")
    registered(state, "10.0.0.2")
    state.apply(A.delete(["10.0.0.1"]))
    other = registered(state, "10.0.0.3")
    assert other.vtep_ip == "44.128.0.1/30"
    result = state.apply(A.register("10.0.0.1"))
    assert isinstance(result, A.Rejected) and result.reason == "vtep_exhausted"
    state.apply(A.delete(["10.0.0.2"]))
    back = registered(state, "10.0.0.1")
    assert back.vtep_ip == "44.128.0.2/30"
    check_invariants(state)


def test_delete_frees_shared_v4_v6_vtep_once() -> None:
    """DC/OS crashed freeing a VTEP twice for agents on a dcos and a dcos6 overlay."""
    doc = network(
        vtep_subnet6="fd01:a::/64",
        overlays=[
            {"name": "dcos", "subnet": "9.0.0.0/8", "prefix": 26},
            {"name": "dcos6", "subnet6": "fd01:b::/64", "prefix6": 80},
        ],
    )
    state = state_for(doc)
    registered(state, "10.0.0.1")
    state.apply(A.delete(["10.0.0.1"]))
    assert state.vteps is not None and state.vteps6 is not None
    assert (state.vteps.used, state.vteps6.used) == (0, 0)
    assert (state.vteps.free, state.vteps6.free) == (4094, 2**64 - 2)


def test_ipv6_blocks_and_formatting() -> None:
    doc = network(
        vtep_subnet6="fd01:a::/64",
        overlays=[
            {
                "name": "dcos",
                "subnet": "9.0.0.0/8",
                "prefix": 24,
                "subnet6": "fd01:b::/64",
                "prefix6": 80,
            },
        ],
    )
    state = state_for(doc)
    first, second = registered(state, "10.0.0.1"), registered(state, "10.0.0.2")
    assert state.network is not None
    overlay = dcos_json.agent_json(second, state.network)["overlays"][0]
    assert first.overlays[0].subnet6 == "fd01:b::/80"
    assert overlay["subnet6"] == "fd01:b:0:0:1::/80"
    assert overlay["mesos_bridge"] == {
        "ip": "9.0.1.0/25",
        "ip6": "fd01:b:0:0:1::/81",
        "name": "m-dcos",
    }
    assert overlay["docker_bridge"] == {
        "ip": "9.0.1.128/25",
        "ip6": "fd01:b::1:8000:0:0/81",
        "name": "d-dcos",
    }
    assert overlay["backend"]["vxlan"]["vtep_ip6"] == "fd01:a::2/64"
    assert overlay["info"] == {
        "name": "dcos",
        "prefix": 24,
        "prefix6": 80,
        "subnet": "9.0.0.0/8",
        "subnet6": "fd01:b::/64",
    }


def test_ipv6_blocks_carry_across_byte_boundaries() -> None:
    """DC/OS's IPv6 increment did not carry across bytes; the 257th /80 must be ...:1:1::/80."""
    state = state_for(network(overlays=[{"name": "v6", "subnet6": "fd01:b::/64", "prefix6": 80}]))
    records = [registered(state, f"10.0.{i // 200}.{i % 200 + 1}") for i in range(258)]
    assert records[256].overlays[0].subnet6 == "fd01:b:0:0:100::/80"
    assert len({r.overlays[0].subnet6 for r in records}) == 258


def test_ipv6_exhaustion_does_not_leak_the_ipv4_block() -> None:
    state = state_for(
        network(
            overlays=[
                {
                    "name": "dual",
                    "subnet": "10.1.0.0/24",
                    "prefix": 26,
                    "subnet6": "fd01:b::/126",
                    "prefix6": 126,
                },
            ]
        )
    )
    registered(state, "10.0.0.1")
    second = registered(state, "10.0.0.2")
    assert second.skipped == (("dual", "subnet6_exhausted"),)
    assert state.blocks["dual"].used == 1  # the IPv4 block was not taken


def test_vtep6_exhaustion_rejects_without_taking_the_ipv4_vtep() -> None:
    state = state_for(network(vtep_subnet6="fd01:a::/126"))  # 2 IPv6 VTEPs
    registered(state, "10.0.0.1")
    registered(state, "10.0.0.2")
    result = state.apply(A.register("10.0.0.3"))
    assert isinstance(result, A.Rejected) and result.reason == "vtep6_exhausted"
    assert state.vteps is not None and state.vteps.used == 2


def test_disabled_overlay_not_allocated_until_enabled() -> None:
    doc = network(
        overlays=[
            {"name": "dcos", "subnet": "9.0.0.0/8", "prefix": 26},
            {"name": "later", "subnet": "10.1.0.0/16", "prefix": 24, "enabled": False},
        ]
    )
    state = state_for(doc)
    first = registered(state, "10.0.0.1")
    assert [o.name for o in first.overlays] == ["dcos"]
    doc["overlays"][1]["enabled"] = True
    configured = state.apply(A.configure(doc))
    assert isinstance(configured, A.Configured) and configured.changed
    again = registered(state, "10.0.0.1")
    assert [o.name for o in again.overlays] == ["dcos", "later"]
    assert again.overlays[0] == first.overlays[0] and again.vtep_ip == first.vtep_ip


def test_added_overlay_allocated_on_next_registration() -> None:
    state = state_for(network())
    registered(state, "10.0.0.1")
    doc = network(
        overlays=[
            {"name": "dcos", "subnet": "9.0.0.0/8", "prefix": 26},
            {"name": "extra", "subnet": "10.1.0.0/16", "prefix": 24},
        ]
    )
    result = state.apply(A.configure(doc))
    assert isinstance(result, A.Configured) and result.added == ("extra",)
    assert [o.subnet for o in registered(state, "10.0.0.1").overlays] == [
        "9.0.0.0/26",
        "10.1.0.0/24",
    ]


@pytest.mark.parametrize(
    ("changed", "fragment"),
    [
        (
            {"overlays": [{"name": "other", "subnet": "10.0.0.0/8", "prefix": 24}]},
            "no longer in the config",
        ),
        (
            {"overlays": [{"name": "dcos", "subnet": "9.0.0.0/8", "prefix": 24}]},
            "prefix changed from 26 to 24",
        ),
        ({"vtep_subnet": "44.128.0.0/16"}, "vtep_subnet changed"),
        ({"vtep_mac_oui": "70:B3:D6:00:00:00"}, "vtep_mac_oui changed"),
    ],
)
def test_incompatible_config_rejected_and_state_kept(
    changed: dict[str, object], fragment: str
) -> None:
    state = state_for(network())
    registered(state, "10.0.0.1")
    before = state.canonical()
    result = state.apply(A.configure(network(**changed)))
    assert (
        isinstance(result, A.Rejected)
        and result.reason == "network_changed"
        and fragment in result.message
    )
    assert state.canonical() == before


def test_same_config_is_no_change_and_mtu_change_is_allowed() -> None:
    state = state_for(network())
    same = state.apply(A.configure(network()))
    assert isinstance(same, A.Configured) and not same.changed
    mtu = state.apply(A.configure(network(vtep_mtu=1450)))
    assert isinstance(mtu, A.Configured) and mtu.changed


def test_status_recorded_and_shown() -> None:
    state = state_for(network())
    registered(state, "10.0.0.1")
    result = state.apply(
        A.report_status(
            "10.0.0.1", [{"name": "dcos", "status": "STATUS_FAILED", "error": "no CNI"}]
        )
    )
    assert isinstance(result, A.StatusRecorded) and result.changed
    assert state.network is not None
    overlay = dcos_json.agent_json(result.agent, state.network)["overlays"][0]
    assert overlay["state"] == {"status": "STATUS_FAILED", "error": "no CNI"}
    ok = state.apply(A.report_status("10.0.0.1", [{"name": "dcos", "status": "STATUS_OK"}]))
    assert isinstance(ok, A.StatusRecorded) and ok.agent.overlays[0].error is None
    revision = state.revision
    repeat = state.apply(A.report_status("10.0.0.1", [{"name": "dcos", "status": "STATUS_OK"}]))
    assert (
        isinstance(repeat, A.StatusRecorded) and not repeat.changed and state.revision == revision
    )


@pytest.mark.parametrize(
    ("command", "reason"),
    [
        (A.report_status("10.0.0.9", [{"name": "dcos", "status": "STATUS_OK"}]), "unknown_agent"),
        (A.report_status("10.0.0.1", [{"name": "nope", "status": "STATUS_OK"}]), "unknown_overlay"),
        (A.report_status("10.0.0.1", [{"name": "dcos", "status": "OK"}]), "bad_status"),
        (A.register("10.0.0.300"), "invalid_ip"),
        (A.register("fd00::1"), "invalid_ip"),
        ({"op": "register", "ip": "10.0.0.2", "mesos_bridge": "yes"}, "bad_command"),
        (A.delete(["not-an-ip"]), "invalid_ip"),
        ({"op": "delete", "ips": "10.0.0.1"}, "bad_command"),
        ({"op": "frobnicate"}, "bad_command"),
        ("register", "bad_command"),
        (A.configure({"vtep_subnet": "nope"}), "invalid_config"),
    ],
)
def test_bad_commands_are_rejected_never_raised(command: object, reason: str) -> None:
    state = state_for(network())
    registered(state, "10.0.0.1")
    before = state.canonical()
    result = state.apply(command)
    assert isinstance(result, A.Rejected) and result.reason == reason, result
    assert state.canonical() == before


def test_commands_before_configure_are_rejected() -> None:
    result = A.ClusterState().apply(A.register("10.0.0.1"))
    assert isinstance(result, A.Rejected) and result.reason == "not_configured"


def test_barrier_reports_the_revision() -> None:
    state = state_for(network())
    registered(state, "10.0.0.1")
    assert state.apply(A.barrier()) == A.Synced(state.revision)


def test_internal_errors_become_rejections() -> None:
    state = state_for(network())
    state.vteps = None  # corrupt the state on purpose: apply must still not raise
    result = state.apply(A.register("10.0.0.1"))
    assert isinstance(result, A.Rejected) and result.reason == "internal_error"


SCRIPT = textwrap.dedent(
    """
    import hashlib, pickle, sys
    from overlay_master import allocator as A
    from overlay_master.config import default_network
    from overlay_master.network import to_plain
    s = A.ClusterState()
    net = to_plain(default_network())
    net["overlays"].append({"name": "six", "subnet6": "fd01:b::/64", "prefix6": 80})
    net["vtep_subnet6"] = "fd01:a::/64"
    s.apply(A.configure(net))
    for i in range(300):
        s.apply(A.register(f"10.1.{i // 100}.{i % 100}", i % 3 != 0, i % 2 == 0))
        if i % 7 == 0:
            s.apply(A.delete([f"10.1.{(i // 2) // 100}.{(i // 2) % 100}"]))
        if i % 5 == 0:
            s.apply(A.report_status(f"10.1.{i // 100}.{i % 100}", [{"name": "dcos", "status": "STATUS_OK"}]))
    print(hashlib.sha256(repr(s.canonical()).encode()).hexdigest(), hashlib.sha256(pickle.dumps(s, protocol=4)).hexdigest())
    """
)


def test_same_commands_same_state_bytes_under_any_hash_seed() -> None:
    root = Path(__file__).resolve().parents[2]
    digests = set()
    for seed in ("0", "1", "12345"):
        env = {**os.environ, "PYTHONHASHSEED": seed, "PYTHONPATH": str(root)}
        out = subprocess.run(
            [sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, check=True
        )
        digests.add(out.stdout.strip())
    assert len(digests) == 1


def test_batch_applies_each_command_in_order_with_its_own_answer() -> None:
    one, two = state_for(network()), state_for(network())
    commands = [
        A.register("10.0.0.1"),
        A.register("bad"),
        A.register("10.0.0.2"),
        A.delete(["10.0.0.1"]),
    ]
    result = one.apply(A.batch(commands))
    assert isinstance(result, A.Batched)
    expected = [two.apply(c) for c in commands]
    assert list(result.results) == expected
    assert one.canonical() == two.canonical()
    nested = one.apply(A.batch([A.batch([A.register("10.0.0.3")])]))
    assert isinstance(nested, A.Batched) and isinstance(nested.results[0], A.Rejected)
    assert isinstance(one.apply({"op": "batch", "commands": "x"}), A.Rejected)
