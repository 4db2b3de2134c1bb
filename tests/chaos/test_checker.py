"""The checker must catch what it claims to catch: hand-made histories, good and bad."""

from __future__ import annotations

import pytest

from tests.chaos import checker, history
from tests.chaos.history import DELETE, FAILED, OK, READ, REGISTER, UNKNOWN, Allocation, Op

pytestmark = pytest.mark.unit

A = Allocation("44.128.0.1/20", None, "70:b3:d5:80:00:01", (("dcos", "9.0.0.0/26", None),))
B = Allocation("44.128.0.2/20", None, "70:b3:d5:80:00:02", (("dcos", "9.0.0.64/26", None),))


class History:
    """Builds ops with increasing ids; times are given explicitly."""

    def __init__(self) -> None:
        self.ops: list[Op] = []

    def add(
        self,
        kind: str,
        invoke: float,
        complete: float,
        outcome: str = OK,
        value: Allocation | None = None,
        agent: str = "10.0.0.1",
    ) -> Op:
        op = Op(len(self.ops), agent, kind, 0, invoke, complete, outcome, 200, value)
        self.ops.append(op)
        return op


def report_for(h: History, final: dict[str, Allocation]) -> checker.Report:
    report = checker.Report()
    checker.check_agents(report, h.ops, final, end=1000.0)
    checker.check_overlapping_answers(report, h.ops)
    return report


def test_a_clean_history_passes() -> None:
    h = History()
    h.add(REGISTER, 0, 1, value=A)
    h.add(READ, 2, 3, value=A)
    h.add(REGISTER, 4, 5, value=A)
    h.add(DELETE, 6, 7)
    h.add(READ, 8, 9, value=None)
    h.add(REGISTER, 10, 11, value=B)  # after a delete another allocation is fine
    report = report_for(h, {"10.0.0.1": B})
    assert report.violations == []


def test_a_stale_read_is_not_linearizable() -> None:
    h = History()
    h.add(REGISTER, 0, 1, value=A)
    h.add(DELETE, 2, 3)
    h.add(READ, 4, 5, value=A)  # the delete was acknowledged before this read began
    assert report_for(h, {}).non_linearizable == 1


def test_an_unknown_delete_may_explain_a_later_404_and_a_missing_final_record() -> None:
    h = History()
    h.add(REGISTER, 0, 1, value=A)
    h.add(DELETE, 2, 7, outcome=UNKNOWN)
    h.add(READ, 8, 9, value=A)  # not applied yet...
    h.add(READ, 10, 11, value=None)  # ...applied now
    assert report_for(h, {}).violations == []


def test_an_unknown_register_may_take_effect_after_a_delete() -> None:
    h = History()
    h.add(REGISTER, 0, 5, outcome=UNKNOWN)
    h.add(DELETE, 6, 7)
    h.add(READ, 8, 9, value=B)  # the stale register landed after the delete
    assert report_for(h, {"10.0.0.1": B}).violations == []


def test_a_lost_acknowledged_registration_is_reported() -> None:
    h = History()
    h.add(REGISTER, 0, 1, value=A)
    h.add(DELETE, 2, 3, outcome=FAILED)  # certainly not applied: cannot explain the loss
    report = report_for(h, {})
    assert (report.lost, report.non_linearizable) == (1, 0)


def test_a_changed_allocation_in_the_final_state_is_reported() -> None:
    h = History()
    h.add(REGISTER, 0, 1, value=A)
    assert report_for(h, {"10.0.0.1": B}).changed == 1


def test_a_reregistration_with_another_allocation_is_a_change() -> None:
    h = History()
    h.add(REGISTER, 0, 1, value=A)
    h.add(REGISTER, 2, 3, value=B)
    report = report_for(h, {"10.0.0.1": B})
    assert report.changed >= 1 and report.non_linearizable == 1


def test_two_agents_holding_one_vtep_at_the_same_time_are_a_duplicate() -> None:
    h = History()
    h.add(REGISTER, 0, 5, value=A, agent="10.0.0.1")
    h.add(READ, 1, 6, value=A, agent="10.0.0.2")
    report = checker.Report()
    checker.check_overlapping_answers(report, h.ops)
    assert report.duplicate > 0


def test_a_resource_may_move_to_another_agent_while_a_delete_is_in_flight() -> None:
    h = History()
    h.add(REGISTER, 0, 1, value=A, agent="10.0.0.1")
    h.add(DELETE, 2, 3, agent="10.0.0.1")
    h.add(REGISTER, 2.5, 4, value=A, agent="10.0.0.2")
    h.add(READ, 0.5, 2.6, value=A, agent="10.0.0.1")
    report = checker.Report()
    checker.check_overlapping_answers(report, h.ops)
    assert report.duplicate == 0


def test_final_states_with_a_shared_subnet_are_a_duplicate() -> None:
    other = Allocation("44.128.0.3/20", None, "70:b3:d5:80:00:03", A.subnets)
    report = checker.Report()
    checker.check_final_states(report, [[("10.0.0.1", A), ("10.0.0.2", other)]])
    assert report.duplicate == 1


def test_the_search_handles_many_unknown_operations() -> None:
    h = History()
    t = 0.0
    for _ in range(40):
        h.add(REGISTER, t, t + 1, outcome=UNKNOWN)
        h.add(DELETE, t + 1, t + 2, outcome=UNKNOWN)
        h.add(REGISTER, t + 2, t + 3, value=A)
        h.add(READ, t + 3, t + 4, value=A)
        t += 4
    assert report_for(h, {"10.0.0.1": A}).violations == []


def test_figure_line_names_every_count() -> None:
    report = checker.Report(
        ops=10,
        ok=7,
        failed=2,
        unknown=1,
        faults=3,
        power_cuts_two=1,
        power_cuts_all=2,
        network_changes=4,
        healed_in=0.94,
    )
    assert report.figure(5) == (
        "chaos seed=5: 10 ops (7 ok, 2 failed, 1 unknown), 3 faults (1 power cuts of two "
        "masters, 2 of all three), 4 network changes, 0 lost, 0 duplicate, "
        "0 changed, 0 non-linearizable, 0 outside a live network, healed in 0.9 s; logs: "
        "0 truncating, 0 tick exceptions, 0 tracebacks"
    )


def test_blocks_of_networks_that_are_not_live_are_found() -> None:
    state = {
        "network": {"overlays": [{"name": "dcos", "subnet": "9.0.0.0/8"}]},
        "agents": [
            {
                "ip": "10.0.0.1",
                "overlays": [
                    {"info": {"name": "dcos"}, "subnet": "9.0.0.0/26"},
                    {"info": {"name": "churn0"}, "subnet": "10.200.0.0/26"},
                ],
            },
            {"ip": "10.0.0.2", "overlays": [{"info": {"name": "dcos"}, "subnet": "10.9.0.0/26"}]},
        ],
    }
    assert history.outside_live_networks(state) == [
        "10.0.0.1 holds 10.200.0.0/26 of network churn0, which is not live",
        "10.0.0.2 holds 10.9.0.0/26 outside network dcos 9.0.0.0/8",
    ]
    state["network"]["overlays"].append({"name": "churn0", "subnet": "10.200.0.0/16"})
    state["agents"].pop()
    assert history.outside_live_networks(state) == []
    # the per-agent model leaves the operator's networks out, uniqueness keeps them
    record = state["agents"][0]
    assert [s[0] for s in history.allocation(record).subnets] == ["dcos"]
    assert [s[0] for s in history.allocation(record, churn=True).subnets] == ["churn0", "dcos"]
