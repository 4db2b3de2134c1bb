"""The Networking page over the whole system: three real masters, three ``overlay-agent``
processes in network namespaces, containers attached with the real CNI plugins. What the agents
report (host-local's leases) is what the page shows: every container with the address CNI gave
it, on the right agent; one attached after the page loaded appears, one removed with CNI DEL
goes, without a reload. Debian's chromium through Playwright, as in
tests/integration/test_networking_page.py."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.harness.browser import chromium, open_page
from tests.netns.agents import World, running_world
from tests.netns.topology import Bed, del_container

sync_api = pytest.importorskip(
    "playwright.sync_api", reason="playwright is not installed: scripts/bootstrap --dev"
)
expect = sync_api.expect

pytestmark = pytest.mark.netns
# The agent reads its leases every 0.5 s and reports through the log; the page follows the
# watch: a few seconds of margin on a busy two-core machine (the timing is not what is tested).
SHOWS = 10_000  # ms


@pytest.fixture
def world(bed: Bed, tmp_path: Path) -> Iterator[World]:
    with running_world(bed, tmp_path) as w:
        yield w


@pytest.fixture
def browser() -> Iterator[Any]:
    with chromium() as context:
        yield context


def test_containers_of_real_agents_are_on_the_page(world: World, browser: Any) -> None:
    a1, a2, a3 = world.agents
    c1, c2 = world.container(a1, "c1"), world.container(a2, "c2")
    watched = open_page(browser, f"{world.masters.replicas[0].url}/#/networks/dcos")
    page = watched.page
    for agent in world.agents:
        row = page.locator(f'tr[data-agent="{agent.ip}"]')
        expect(row).to_contain_text(f"44.128.0.{agent.k}/20", timeout=SHOWS)
        expect(row.locator(".status")).to_have_text("ok", timeout=SHOWS)  # its status report
    for container, agent in ((c1, a1), (c2, a2)):
        assert container.ip is not None
        row = page.locator(f'tr[data-container="{container.id}"]')
        expect(row).to_contain_text(container.ip, timeout=SHOWS)
        expect(row).to_contain_text(agent.ip)
        expect(row).to_contain_text("mesos")
        expect(row).to_contain_text("eth0")
    # attached after the page loaded
    c3 = world.container(a3, "c3")
    assert c3.ip is not None
    late = page.locator(f'tr[data-container="{c3.id}"]')
    expect(late).to_contain_text(c3.ip, timeout=SHOWS)
    expect(page.locator(f'tr[data-agent="{a3.ip}"] td').last).to_have_text("1")
    # removed with CNI DEL: gone from the page, the others stay
    del_container(world.bed, c2)
    expect(page.locator(f'tr[data-container="{c2.id}"]')).to_have_count(0, timeout=SHOWS)
    expect(page.locator("tr[data-container]")).to_have_count(2)
    page.get_by_role("navigation").get_by_role("link", name="Networks").click()
    expect(page.locator('tr[data-network="dcos"] td').nth(4)).to_have_text("2")
    assert watched.problems == []
