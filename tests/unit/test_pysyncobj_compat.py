"""PySyncObj must not leave a broken socket.inet_ntop behind (pyroute2 depends on it)."""

from __future__ import annotations

import socket
import subprocess
import sys

import pytest

pytestmark = pytest.mark.unit


def test_inet_ntop_still_works_after_importing_the_master() -> None:
    import overlay_master.node  # noqa: F401

    assert socket.inet_ntop(socket.AF_INET, b"\x7f\x00\x00\x01") == "127.0.0.1"
    assert socket.inet_ntop(socket.AF_INET6, b"\x00" * 15 + b"\x01") == "::1"


def test_plain_pysyncobj_import_breaks_it_canary() -> None:
    """Fails once a PySyncObj release stops replacing inet_ntop: then the shim can go."""
    code = "import socket, pysyncobj; socket.inet_ntop(socket.AF_INET, bytes(4))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert out.returncode != 0 and "not_windows" in out.stderr
