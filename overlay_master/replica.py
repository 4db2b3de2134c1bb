"""The seam between the HTTP API and a replica: what ``create_app`` and the watch handler need.

``node.Node`` (PySyncObj underneath) is the real one; tests run the same API over a fake that
applies commands to the real allocator in-process (tests/fakes/node.py). Everything here is
called on the event loop; ``attach`` is called once, at start-up, before any request.
"""

from __future__ import annotations

import asyncio
from typing import Any, Protocol

from overlay_master.allocator import AgentRecord, ClusterState, Result
from overlay_master.encoding import Encoder, Snapshot
from overlay_master.network import NetworkConfig


class Replica(Protocol):
    @property
    def encoding(self) -> Encoder:
        """Encodes this replica's snapshots (and watch deltas) into answer bytes."""

    @property
    def revision(self) -> int:
        """The revision of the state applied here (moves without a lock: a hint, not a read)."""

    @property
    def network(self) -> NetworkConfig | None:
        """The network config applied here, None before one is committed."""

    @property
    def self_address(self) -> str:
        """This replica's Raft address, as the other replicas know it."""

    @property
    def peers(self) -> tuple[str, ...]:
        """The other replicas' Raft addresses, as configured."""

    @property
    def drift(self) -> list[str]:
        """How the config file this replica started with differs from the log (empty: not)."""

    def attach(self, loop: asyncio.AbstractEventLoop) -> None:
        """Start waking watchers on ``loop`` (the server's)."""

    async def submit(self, command: dict[str, Any], timeout: float) -> Result:
        """Commit a write and return its result as applied here.

        Raises ``NotReadyError`` when the outcome is unknown (no quorum, leader change, timeout)."""

    async def sync(self, timeout: float) -> int:
        """Return once every write acknowledged before the call is applied here.

        Raises ``NotReadyError`` when that cannot be confirmed with a quorum in time."""

    async def wait_revision_above(self, since: int, timeout: float) -> None:
        """Return once the revision applied here is above ``since``, or after ``timeout``."""

    def snapshot(self) -> Snapshot:
        """The state as of now (a consistent copy)."""

    def watch_snapshot(self, since: int) -> Snapshot:
        """What a watch at ``since`` is answered from (the revision published to watchers)."""

    def record(self, ip: str) -> tuple[NetworkConfig | None, AgentRecord | None]:
        """The network config and one agent's record, read together."""

    def pools(self) -> ClusterState:
        """The live state, for metrics only (read without the lock)."""

    def status(self) -> dict[str, Any]:
        """Raft status (PySyncObj's ``getStatus`` keys); empty if it cannot be read."""

    def leader(self) -> str | None:
        """The leader's Raft address, None when none is known."""

    def role(self, status: dict[str, Any] | None = None) -> str:
        """``follower``, ``candidate``, ``leader`` or ``unknown``."""

    def ready(self) -> tuple[bool, str]:
        """Whether this replica should take traffic, and why not."""

    def alive(self) -> bool:
        """Liveness: whether the replica still applies the log at all."""
