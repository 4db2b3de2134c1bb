"""Hypothesis stateful test of the allocator against its invariants and against itself.

Two instances are fed the same commands and must agree; a pickled-and-restored copy must continue
identically; a trivial model (which IPs are registered) must match.
"""

from __future__ import annotations

import ipaddress
import pickle

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from overlay_master import allocator as A
from overlay_wire.contract import STATUSES

from .allocator_helpers import check_invariants, network

pytestmark = pytest.mark.unit

IPS = [f"10.0.0.{i}" for i in range(1, 13)]  # more agents than VTEPs (6) and blocks (4 + 8)
NET = network(
    vtep_subnet="44.128.0.0/29",
    vtep_subnet6="fd01:a::/125",
    overlays=[
        {"name": "a", "subnet": "10.1.0.0/24", "prefix": 26},
        {
            "name": "b",
            "subnet": "10.2.0.0/24",
            "prefix": 27,
            "subnet6": "fd01:b::/64",
            "prefix6": 67,
        },
        {"name": "c", "subnet6": "fd01:c::/126", "prefix6": 126, "enabled": False},
    ],
)


EXTRA = ["x", "y"]  # networks added and deleted at run time
SPACES = [("10.5.0.0/28", 30), ("10.5.0.0/29", 30), ("10.6.0.0/24", 26), ("10.1.0.0/25", 27)]


class AllocatorMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.one = A.ClusterState()
        self.two = A.ClusterState()
        self.model: set[str] = set()
        self.apply(A.configure(NET))

    def apply(self, command: dict[str, object]) -> A.Result:
        first, second = self.one.apply(command), self.two.apply(command)
        assert first == second
        return first

    @rule(ip=st.sampled_from(IPS), mesos=st.booleans(), docker=st.booleans())
    def register(self, ip: str, mesos: bool, docker: bool) -> None:
        before = self.one.agents.get(ip)
        result = self.apply(A.register(ip, mesos, docker))
        if isinstance(result, A.Registered):
            self.model.add(ip)
            if before is not None:  # same allocation for what it already had
                assert result.agent.vtep_ip == before.vtep_ip
                assert result.agent.overlays[: len(before.overlays)] == before.overlays
        else:
            assert isinstance(result, A.Rejected) and result.reason in (
                "vtep_exhausted",
                "vtep6_exhausted",
            )
            assert ip not in self.model

    @rule(ips=st.lists(st.sampled_from(IPS), max_size=4))
    def delete(self, ips: list[str]) -> None:
        result = self.apply(A.delete(ips))
        assert isinstance(result, A.Deleted)
        assert set(result.ips) == self.model & set(ips)
        self.model -= set(ips)

    @rule(ip=st.sampled_from(IPS), status=st.sampled_from(STATUSES))
    def status(self, ip: str, status: str) -> None:
        record = self.one.agents.get(ip)
        reports = [{"name": o.name, "status": status} for o in record.overlays] if record else []
        result = self.apply(A.report_status(ip, reports))
        assert isinstance(result, A.StatusRecorded) == (ip in self.model)

    @rule(enable_c=st.booleans())
    def reconfigure(self, enable_c: bool) -> None:
        doc = {
            **NET,
            "overlays": [*NET["overlays"][:2], {**NET["overlays"][2], "enabled": enable_c}],
        }
        result = self.apply(A.configure(doc))
        # a configure entry of the old format cannot drop networks added at run time
        assert isinstance(result, A.Configured) or result.reason == "network_changed"

    @rule(name=st.sampled_from(EXTRA), space=st.sampled_from(SPACES), enabled=st.booleans())
    def add_network(self, name: str, space: tuple[str, int], enabled: bool) -> None:
        exists = self.one.network is not None and self.one.network.overlay(name) is not None
        overlay = {"name": name, "subnet": space[0], "prefix": space[1], "enabled": enabled}
        result = self.apply(A.add_network(overlay))
        if isinstance(result, A.Rejected):
            assert result.reason in ("network_exists", "network_overlap"), result
            assert exists or result.reason == "network_overlap"
        else:
            assert not exists and isinstance(result, A.NetworkChanged)
            holders = [ip for ip, r in self.one.agents.items() if r.overlay(name)]
            assert set(result.agents) >= set(holders)
            assert bool(holders) <= enabled

    @rule(name=st.sampled_from(EXTRA), enabled=st.booleans())
    def switch_network(self, name: str, enabled: bool) -> None:
        result = self.apply(A.update_network(name, enabled=enabled))
        assert isinstance(result, A.NetworkChanged | A.Rejected)

    @rule(name=st.sampled_from(EXTRA), force=st.booleans())
    def delete_network(self, name: str, force: bool) -> None:
        result = self.apply(A.delete_network(name, force=force))
        if isinstance(result, A.NetworkChanged):
            assert all(r.overlay(name) is None for r in self.one.agents.values())
            assert name not in self.one.blocks
        else:
            assert result.reason in ("unknown_network", "network_in_use"), result

    @rule(ip=st.sampled_from(IPS), count=st.integers(0, 3))
    def report_containers(self, ip: str, count: int) -> None:
        record = self.one.agents.get(ip)
        entries = []
        for overlay in record.overlays if record else ():
            if overlay.subnet is None or not overlay.mesos_bridge:
                continue
            half = next(ipaddress.ip_network(overlay.subnet).subnets(prefixlen_diff=1))
            if half.num_addresses < count + 3:  # network, gateway, broadcast
                continue
            first = half.network_address
            entries += [
                {
                    "id": f"{overlay.name}-{i}",
                    "network": overlay.name,
                    "half": "mesos",
                    "address": str(first + 2 + i),
                }
                for i in range(count)
            ]
        result = self.apply(A.report_containers(ip, entries))
        if record is None:
            assert isinstance(result, A.Rejected) and result.reason == "unknown_agent"
        else:
            assert isinstance(result, A.ContainersReported), result
            assert len(self.one.containers[ip]) == len(entries)

    @rule()
    def restore_from_pickle(self) -> None:
        self.two = pickle.loads(pickle.dumps(self.two))

    @invariant()
    def invariants(self) -> None:
        check_invariants(self.one)
        assert set(self.one.agents) == self.model
        assert self.one.canonical() == self.two.canonical()


AllocatorMachine.TestCase.settings = settings(
    max_examples=150,
    stateful_step_count=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestAllocatorMachine = AllocatorMachine.TestCase
