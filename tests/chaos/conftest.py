"""Chaos runs need root (network namespaces, nft inside them), the ip and nft tools, and FUSE
for the power-cut file systems."""

from __future__ import annotations

import os
import shutil

import pytest

from tests.powercut.mount import available


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    reason = None
    if os.geteuid() != 0:
        reason = "chaos runs need root (network namespaces)"
    elif not (shutil.which("ip") and shutil.which("nft")):
        reason = "chaos runs need iproute2 and nftables"
    elif available() is not None:
        reason = f"chaos runs need FUSE: {available()}"
    for item in items:
        if reason and item.get_closest_marker("chaos"):
            item.add_marker(pytest.mark.skip(reason=reason))
