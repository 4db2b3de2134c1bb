"""PySyncObj, imported without its side effect on the ``socket`` module.

pysyncobj 0.3.17's ``win_inet_pton`` (imported by ``tcp_connection``, so by ``import pysyncobj``)
ends with ``socket.inet_ntop = inet_ntop`` *outside* its ``if os.name == 'nt'`` guard: on Linux
it replaces the real ``socket.inet_ntop`` with a ctypes function that only works on Windows.
Every later ``socket.inet_ntop`` in the process then fails (``not_windows() takes 0 positional
arguments``); pyroute2 decodes addresses with it, so agent code in the same process broke.
Write-up and reproducer: docs/pysyncobj-inet-ntop.md.

Every module of ours imports PySyncObj through here, which imports it once and puts the real
function back. Re-exported names are the ones we use.
"""

from __future__ import annotations

import socket

_real_inet_ntop = socket.inet_ntop

import pysyncobj  # noqa: E402 -- must come after saving the real function
from pysyncobj import (  # noqa: E402
    FAIL_REASON,
    SyncObj,
    SyncObjConf,
    SyncObjConsumer,
    SyncObjException,
    replicated,
)
from pysyncobj.transport import TCPTransport  # noqa: E402

socket.inet_ntop = _real_inet_ntop

__all__ = [
    "FAIL_REASON",
    "SyncObj",
    "SyncObjConf",
    "SyncObjConsumer",
    "SyncObjException",
    "TCPTransport",
    "pysyncobj",
    "replicated",
]
