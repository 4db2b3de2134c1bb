"""The demo's one error hierarchy.

DemoError
 +-- Interrupted     Ctrl-C, SIGTERM or SIGHUP arrived while starting
 +-- InUse           another run holds the same data dir or namespace prefix
 +-- HostError       an ``ip`` command making or removing a namespace failed
 +-- CniError        a CNI config could not be read, or a plugin refused ADD or DEL
 +-- StartError      a master, agent or container did not come up in time (the log is named)
"""

from __future__ import annotations


class DemoError(Exception):
    """Base of every error the demo raises on purpose."""


class Interrupted(DemoError):
    """A stop signal arrived before the system was up."""


class InUse(DemoError):
    """Another live run owns the data dir or the namespace prefix."""


class HostError(DemoError):
    """Making or removing a namespace, link or address failed."""


class CniError(DemoError):
    """Reading a network config or running a CNI plugin failed."""


class StartError(DemoError):
    """Something did not become ready before its deadline, or exited."""
