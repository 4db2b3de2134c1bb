"""ChangeLog: which agents each revision touched, in a bounded contiguous window."""

from __future__ import annotations

import pytest

from overlay_master import allocator as A
from overlay_master.changes import RECORDS, ChangeLog, changes

from .allocator_helpers import network, state_for

pytestmark = pytest.mark.unit


def test_touched_since_lists_each_agent_once_in_order_of_first_change() -> None:
    log = ChangeLog()
    log.record(1, ())  # the config
    log.record(2, ("10.0.0.1",))
    log.record(3, ("10.0.0.2",))
    log.record(4, ("10.0.0.1", "10.0.0.3"))
    assert log.touched_since(1, 4) == ["10.0.0.1", "10.0.0.2", "10.0.0.3"]
    assert log.touched_since(3, 4) == ["10.0.0.1", "10.0.0.3"]
    assert log.touched_since(4, 4) == []
    assert log.touched_since(0, 4) == ["10.0.0.1", "10.0.0.2", "10.0.0.3"]  # floor is 0


def test_an_empty_log_or_a_stale_current_revision_cannot_tell() -> None:
    log = ChangeLog()
    assert log.touched_since(0, 0) is None
    log.record(1, ("10.0.0.1",))
    assert log.touched_since(0, 2) is None  # the state moved on without the log (a snapshot)


def test_a_gap_starts_the_window_over() -> None:
    log = ChangeLog()
    for revision in range(1, 4):
        log.record(revision, (f"10.0.0.{revision}",))
    log.record(10, ("10.0.0.10",))  # revisions 4..9 arrived as an installed snapshot
    assert log.floor == 9 and log.last == 10
    assert log.touched_since(9, 10) == ["10.0.0.10"]
    assert log.touched_since(3, 10) is None  # what 4..9 touched is unknown: full state


def test_capacity_drops_the_oldest_revisions() -> None:
    log = ChangeLog(capacity=3)
    for revision in range(1, 7):
        log.record(revision, (f"10.0.0.{revision}",))
    assert len(log.entries) == 3 and log.floor == 3
    assert log.touched_since(3, 6) == ["10.0.0.4", "10.0.0.5", "10.0.0.6"]
    assert log.touched_since(2, 6) is None


def test_applied_records_every_change_of_a_batch_and_explains_jumps() -> None:
    state = state_for(network())
    log = ChangeLog()
    assert log.applied(state.revision, A.Configured(state.revision, True, ()))
    result = state.apply(
        A.batch([A.register("10.0.0.1"), A.register("10.0.0.2"), A.register("10.0.0.1")])
    )
    assert changes(result) == [(2, ("10.0.0.1",), RECORDS), (3, ("10.0.0.2",), RECORDS)]
    assert log.applied(state.revision, result)
    assert log.touched_since(1, 3) == ["10.0.0.1", "10.0.0.2"]
    barrier = state.apply(A.barrier())
    assert not log.applied(state.revision, barrier)  # the revision did not move: nobody to wake
    deleted = state.apply(A.delete(["10.0.0.1"]))
    assert log.applied(state.revision, deleted) and log.touched_since(3, 4) == ["10.0.0.1"]
    # a revision that no result explains (a snapshot installed from the leader) restarts the log
    assert log.applied(9, barrier)
    assert log.floor == 8 and log.touched_since(4, 9) is None


def test_unchanged_results_record_nothing() -> None:
    state = state_for(network())
    first = state.apply(A.register("10.0.0.1"))
    again = state.apply(A.register("10.0.0.1"))
    rejected = state.apply(A.report_status("10.9.9.9", []))
    assert changes(first) == [(2, ("10.0.0.1",), RECORDS)]
    assert changes(again) == [] and changes(rejected) == []
    assert changes(state.apply(A.delete(["10.1.1.1"]))) == []
