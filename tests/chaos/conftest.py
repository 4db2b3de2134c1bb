"""Chaos runs need root (network namespaces, nft inside them) and the ip and nft tools."""

from __future__ import annotations

import os
import shutil

import pytest


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    reason = None
    if os.geteuid() != 0:
        reason = "chaos runs need root (network namespaces)"
    elif not (shutil.which("ip") and shutil.which("nft")):
        reason = "chaos runs need iproute2 and nftables"
    for item in items:
        if reason and item.get_closest_marker("chaos"):
            item.add_marker(pytest.mark.skip(reason=reason))
