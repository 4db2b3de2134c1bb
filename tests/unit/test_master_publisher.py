"""The publisher: an isolated change wakes watchers at once, a burst is held back and sent as one."""

from __future__ import annotations

import asyncio

import pytest

from overlay_master.publisher import MAX_PAUSE, Publisher

pytestmark = [pytest.mark.unit]


def test_a_watcher_behind_the_published_revision_returns_at_once() -> None:
    async def main() -> None:
        publisher = Publisher(asyncio.get_running_loop(), 5)
        async with asyncio.timeout(1):
            await publisher.wait_above(4, 60)
        assert publisher.parked == 0

    asyncio.run(main())


def test_a_parked_watcher_times_out_without_a_publication() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        publisher = Publisher(loop, 5)
        started = loop.time()
        await publisher.wait_above(5, 0.05)
        assert loop.time() - started >= 0.05
        assert publisher.parked == 0

    asyncio.run(main())


def test_an_isolated_change_wakes_every_parked_watcher_at_once() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        publisher = Publisher(loop, 5)
        watchers = [asyncio.create_task(publisher.wait_above(5, 60)) for _ in range(100)]
        await asyncio.sleep(0.01)
        assert publisher.parked == 100
        publisher.publish(6)
        assert publisher.published == 6  # no pause after a quiet spell
        async with asyncio.timeout(1):
            await asyncio.gather(*watchers)
        assert publisher.parked == 0

    asyncio.run(main())


def test_a_burst_during_a_fanout_is_published_once_after_a_pause() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        publisher = Publisher(loop, 5)
        woken: list[float] = []

        async def watcher(since: int) -> None:
            await publisher.wait_above(since, 60)
            await asyncio.sleep(0.02)  # its answer takes a while: the fan-out lasts 20 ms
            woken.append(loop.time())

        first = [asyncio.create_task(watcher(5)) for _ in range(10)]
        await asyncio.sleep(0.01)
        publisher.publish(6)
        assert publisher.published == 6
        await asyncio.sleep(0)  # the woken watchers leave their wait
        for revision in range(7, 50):  # a burst while they are answered
            publisher.publish(revision)
        assert publisher.published == 6  # held back: the fan-out is not over
        second = [asyncio.create_task(publisher.wait_above(6, 60)) for _ in range(10)]
        async with asyncio.timeout(MAX_PAUSE + 1):
            await asyncio.gather(*first)
            await asyncio.gather(*second)
        assert publisher.published == 49  # the whole burst, in one publication

    asyncio.run(main())


def test_a_revision_heard_of_elsewhere_is_served_by_the_publication_already_due() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        publisher = Publisher(loop, 5)
        slow = [asyncio.create_task(publisher.wait_above(5, 60)) for _ in range(3)]
        await asyncio.sleep(0.01)
        publisher.publish(6)
        publisher.publish(7)  # due once the fan-out of 6 is over
        ahead = asyncio.create_task(publisher.wait_above(6, 60))  # a client that saw 7 answered
        async with asyncio.timeout(MAX_PAUSE + 1):
            await asyncio.gather(*slow, ahead)
        assert publisher.published == 7

    asyncio.run(main())


class Snap:
    def __init__(self, revision: int) -> None:
        self.revision = revision


def test_answers_come_from_the_published_snapshot_unless_the_client_is_ahead() -> None:
    async def main() -> None:
        live = Snap(5)
        publisher: Publisher[Snap] = Publisher(asyncio.get_running_loop(), 5, lambda: live)
        assert publisher.answer_from(0, lambda: live) is live  # nothing published yet
        publisher.publish(6)
        published = publisher.captured
        assert published is live and publisher.published == 5  # the capture names the revision
        live = Snap(9)
        assert publisher.answer_from(0, lambda: live) is published
        assert publisher.answer_from(5, lambda: live) is published
        assert publisher.answer_from(7, lambda: live) is live  # heard of 7 elsewhere

    asyncio.run(main())
