"""The master-agent contract: what the master really emits is what the agent reads.

The master's documents are produced by its real allocator and encoder; the agent's ``desired()``
then has to find, for every agent, exactly the kernel objects the allocation implies. The
hand-written documents of ``tests/statedoc.py`` are checked against the master's output too, so
agent tests that use them cannot drift from the wire format.
"""

from __future__ import annotations

import json
import pickle
from ipaddress import IPv4Address, IPv4Interface, IPv4Network
from typing import Any

import pytest

from overlay_agent.cluster import ClusterState as AgentState
from overlay_agent.desired import AgentOptions, desired
from overlay_master import allocator, dcos_json
from overlay_master.allocator import ClusterState
from overlay_master.schema import OverlayStatus
from overlay_wire import contract
from tests import statedoc

pytestmark = pytest.mark.unit

TWO = [statedoc.DCOS, ("blue", "10.99.0.0/16", 28)]


def master_state(agents: list[tuple[str, bool]], overlays: list[statedoc.Overlay]) -> bytes:
    """``GET /overlay-master/state`` as the master encodes it, after these registrations."""
    network: dict[str, Any] = {
        "vtep_subnet": statedoc.VTEP_SUBNET,
        "vtep_mac_oui": statedoc.OUI,
        "overlays": [config(o) for o in overlays],
    }
    if statedoc.dual(overlays):
        network["vtep_subnet6"] = statedoc.VTEP_SUBNET6
    state = ClusterState()
    assert not isinstance(state.apply(allocator.configure(network)), allocator.Rejected)
    for ip, bridges in agents:
        result = state.apply(allocator.register(ip, bridges, bridges))
        assert isinstance(result, allocator.Registered), result
    assert state.network is not None
    records = [dcos_json.agent_json(r, state.network) for r in state.agents.values()]
    return dcos_json.dumps(dcos_json.state_json(records, state.network))


def config(overlay: statedoc.Overlay) -> dict[str, Any]:
    name, subnet, prefix, *v6 = overlay
    doc: dict[str, Any] = {"name": name}
    if subnet is not None:
        doc["subnet"], doc["prefix"] = subnet, prefix
    if v6:
        doc["subnet6"], doc["prefix6"] = v6
    return doc


def gateway(half: IPv4Network) -> IPv4Interface:
    return IPv4Interface((half.network_address + 1, half.prefixlen))


def test_hand_written_documents_equal_the_masters_output() -> None:
    agents = [("10.0.0.1", False), ("10.0.0.2", True), ("10.0.0.3", True)]
    wire = json.loads(master_state(agents, TWO))
    by_hand = statedoc.state(
        [statedoc.record(ip, n, TWO, bridges=b) for n, (ip, b) in enumerate(agents, 1)], TWO
    )
    assert wire == by_hand


def test_hand_written_dual_stack_documents_equal_the_masters_output() -> None:
    """Dual stack (``DCOS6``) and an IPv6-only network: the VTEP IPv6, blocks and halves."""
    overlays = [statedoc.DCOS6, ("six", None, None, "fd01:c::/48", 64)]
    agents = [("10.0.0.1", False), ("10.0.0.2", True), ("10.0.0.3", True)]
    wire = json.loads(master_state(agents, overlays))
    by_hand = statedoc.state(
        [statedoc.record(ip, n, overlays, bridges=b) for n, (ip, b) in enumerate(agents, 1)],
        overlays,
    )
    assert wire == by_hand


def test_every_agent_builds_what_the_allocation_implies() -> None:
    agents = [("10.0.0.1", False), ("10.0.0.2", True), ("10.0.0.3", True), ("10.0.0.4", True)]
    document = AgentState.from_document(json.loads(master_state(agents, TWO))).document()
    for n, (ip, bridges) in enumerate(agents, 1):
        options = AgentOptions(ip=IPv4Address(ip), mesos_bridge=bridges, docker_bridge=bridges)
        want = desired(document, options, underlay_mtu=1500)
        assert want is not None and want.vtep is not None
        assert want.vtep.name == contract.VTEP_NAME and want.vtep.vni == contract.VNI
        assert want.vtep.address == IPv4Interface(f"{statedoc.vtep_ip(n)}/20")
        assert want.vtep.mac == statedoc.vtep_mac(n)
        blocks = {name: statedoc.block(s, p, n - 1) for name, s, p in TWO}
        expected_bridges = set()
        for name, block in blocks.items() if bridges else ():
            lower, upper = block.subnets(prefixlen_diff=1)
            expected_bridges |= {
                (contract.mesos_bridge_name(name), gateway(lower)),
                (contract.docker_bridge_name(name), gateway(upper)),
            }
        assert {(b.name, b.gateway) for b in want.bridges} == expected_bridges
        others = [(m, other) for m, (other, _) in enumerate(agents, 1) if other != ip]
        assert {(r.dst, r.via) for r in want.routes} == {
            (statedoc.block(s, p, m - 1), statedoc.vtep_ip(m)) for m, _ in others for _, s, p in TWO
        }
        assert {(x.ip, x.mac) for x in want.neighbours} == {
            (statedoc.vtep_ip(m), statedoc.vtep_mac(m)) for m, _ in others
        }
        assert {(f.mac, f.dst) for f in want.fdb} == {
            (statedoc.vtep_mac(m), IPv4Address(other)) for m, other in others
        }


def test_the_overlays_the_agent_masquerades_are_the_masters_networks() -> None:
    document = json.loads(master_state([("10.0.0.2", True)], TWO))
    want = desired(document, AgentOptions(ip=IPv4Address("10.0.0.2")), 1500)
    assert want is not None and want.masquerade is not None
    assert want.masquerade.overlays == {IPv4Network(s) for _, s, _ in TWO}


def test_statuses_are_one_list_on_both_sides() -> None:
    """The agent reports ``contract.Status``; the master's schema and allocator accept exactly it."""
    schema = OverlayStatus.model_json_schema()
    status_enum = schema["$defs"]["Status"]["enum"]
    assert status_enum == list(contract.STATUSES)
    state = ClusterState()
    state.apply(allocator.configure(json.loads(master_state([], [statedoc.DCOS]))["network"]))
    state.apply(allocator.register("10.0.0.2"))
    for status in contract.Status:
        report = OverlayStatus(name="dcos", status=status).model_dump(mode="json")
        assert type(report["status"]) is str  # plain data goes into the log, never our enum
        result = state.apply(allocator.report_status("10.0.0.2", [report]))
        assert isinstance(result, allocator.StatusRecorded), result


def test_snapshots_pickled_before_the_module_split_still_load() -> None:
    """PySyncObj dumps written before records.py existed name ``overlay_master.allocator``."""
    state = ClusterState()
    state.apply(allocator.configure(json.loads(master_state([], [statedoc.DCOS]))["network"]))
    state.apply(allocator.register("10.0.0.2"))
    state.apply(allocator.delete(["10.0.0.2"]))
    state.apply(allocator.register("10.0.0.3"))
    new = pickle.dumps(state, protocol=2)
    assert b"overlay_master.records" in new
    old = new.replace(b"overlay_master.records", b"overlay_master.allocator")
    loaded: Any = pickle.loads(old)
    assert loaded.canonical() == state.canonical()
