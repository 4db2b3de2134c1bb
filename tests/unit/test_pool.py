"""The slot pool: fresh slots lowest first, released ones oldest first, preferred slots."""

from __future__ import annotations

import pytest

from overlay_master.pool import Pool

pytestmark = pytest.mark.unit


def test_order_fresh_then_oldest_released() -> None:
    pool = Pool(5)
    assert [pool.take() for _ in range(3)] == [0, 1, 2]
    pool.release(1)
    pool.release(0)
    assert [pool.take(), pool.take()] == [3, 4]
    assert [pool.take(), pool.take(), pool.take()] == [1, 0, None]


def test_preferred_slot_taken_out_of_order_and_queue_stays_right() -> None:
    pool = Pool(3)
    for _ in range(3):
        pool.take()
    pool.release(0)
    pool.release(1)
    assert pool.take(preferred=1) == 1
    pool.release(1)  # released again: now younger than 0
    pool.release(2)
    assert [pool.take(), pool.take(), pool.take(), pool.take()] == [0, 1, 2, None]


def test_counts_and_double_release() -> None:
    pool = Pool(4)
    pool.take()
    pool.take()
    pool.release(0)
    pool.release(0)
    pool.release(3)  # never taken: ignored
    pool.release(99)  # out of range: ignored
    assert (pool.used, pool.free) == (1, 3)
    assert pool.can_take() and not Pool(0).can_take()


def test_churn_keeps_the_queue_bounded() -> None:
    pool = Pool(10)
    for _ in range(10):
        pool.take()
    for i in range(10_000):
        pool.release(i % 10)
        assert pool.take(preferred=i % 10) == i % 10
    assert len(pool._queue) < 200  # lazily deleted pairs are compacted
