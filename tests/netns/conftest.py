"""Fixtures for the netns tests: root required; every namespace and process removed at the end."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.netns.topology import Bed


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    reason = None
    if os.geteuid() != 0:
        reason = "netns tests need root"
    elif not Path("/usr/lib/cni/bridge").exists() or not shutil.which("nft"):
        reason = "needs containernetworking-plugins and nftables"
    for item in items:
        if reason and item.get_closest_marker("netns"):
            item.add_marker(pytest.mark.skip(reason=reason))


@pytest.fixture
def bed(tmp_path: Path) -> Iterator[Bed]:
    b = Bed(root=tmp_path)
    try:
        yield b
    finally:
        b.destroy()
