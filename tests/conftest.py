"""Test-session set-up shared by every suite.

PySyncObj replaces ``socket.inet_ntop`` when first imported (see
overlay_master/pysyncobj_compat.py); importing it through our shim first keeps the real function
for the whole test process, where agent (pyroute2) tests run after master tests.
"""

import overlay_master.pysyncobj_compat  # noqa: F401
