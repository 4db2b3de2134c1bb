"""A replica without Raft: the real allocator applied in-process, for ``create_app`` tests.

``FakeNode`` satisfies ``overlay_master.replica.Replica``. Commands go straight to the real pure
state machine (``ClusterState.apply``) and its real ``ChangeLog`` and ``Encoder``, so answers are
the bytes a real replica would send. What Raft would add is reduced to what the HTTP layer can
observe, and can be switched on: ``fault = "no_quorum"`` makes writes and linearizable reads fail
at once with ``NotReadyError`` (a failure code from the log); ``fault = "timeout"`` makes them wait
out their timeout first (a log that never answers).
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any, Literal

from overlay_master import allocator
from overlay_master.allocator import AgentRecord, ClusterState, Result
from overlay_master.changes import CHANGE_LOG_CAPACITY, ChangeLog
from overlay_master.encoding import Encoder, Snapshot
from overlay_master.errors import NotReadyError
from overlay_master.network import NetworkConfig, to_plain
from overlay_master.publisher import Publisher
from overlay_master.validation import parse_network

Fault = Literal["no_quorum", "timeout"] | None

DEFAULT_NETWORK: dict[str, Any] = {
    "vtep_subnet": "44.128.0.0/20",
    "vtep_mac_oui": "70:B3:D5:00:00:00",
    "overlays": [{"name": "dcos", "subnet": "9.0.0.0/8", "prefix": 26}],
}


class FakeNode:
    def __init__(
        self, network: dict[str, Any] | None = DEFAULT_NETWORK, changes: int = CHANGE_LOG_CAPACITY
    ) -> None:
        self.state = ClusterState()
        self.changes = ChangeLog(changes)
        self.encoding = Encoder(self.changes)
        self.fault: Fault = None
        self.self_address = "127.0.0.1:7001"
        self.peers: tuple[str, ...] = ()
        self.drift: list[str] = []
        self._publisher: Publisher[Snapshot] | None = (
            None  # the real one: watchers wake as on a replica
        )
        if network is not None:
            result = self.apply(allocator.configure(to_plain(parse_network(network))))
            assert isinstance(result, allocator.Configured), result

    def apply(self, command: dict[str, Any]) -> Result:
        """What a committed log entry does on a replica: apply, record the change, wake."""
        result = self.state.apply(command)
        if self.changes.applied(self.state.revision, result) and self._publisher is not None:
            self._publisher.publish(self.state.revision)
        return result

    @property
    def waiting(self) -> int:
        """Watchers parked in ``wait_revision_above`` (tests wait on this)."""
        return 0 if self._publisher is None else self._publisher.parked

    # -- Replica ----------------------------------------------------------------------------------

    @property
    def revision(self) -> int:
        return self.state.revision

    @property
    def network(self) -> NetworkConfig | None:
        return self.state.network

    def attach(self, loop: asyncio.AbstractEventLoop) -> None:
        self._publisher = Publisher(loop, self.state.revision, self.snapshot)

    def watch_snapshot(self, since: int) -> Snapshot:
        if self._publisher is None:
            return self.snapshot()
        return self._publisher.answer_from(since, self.snapshot)

    async def submit(self, command: dict[str, Any], timeout: float) -> Result:
        await self._through_the_log(timeout)
        return self.apply(command)

    async def sync(self, timeout: float) -> int:
        await self._through_the_log(timeout)
        return self.state.revision

    async def _through_the_log(self, timeout: float) -> None:
        if self.fault == "no_quorum":
            raise NotReadyError("the replicated log answered NOT_LEADER; the outcome is unknown")
        if self.fault == "timeout":
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.Event().wait(), timeout)
            raise NotReadyError(f"no answer from the Raft log within {timeout:g} s")

    async def wait_revision_above(self, since: int, timeout: float) -> None:
        if self._publisher is not None:
            await self._publisher.wait_above(since, timeout)

    def snapshot(self) -> Snapshot:
        state = self.state
        return Snapshot(
            state.network,
            state.revision,
            list(state.agents.values()),
            dict(state.containers),
            dict(state.replicas),
        )

    def record(self, ip: str) -> tuple[NetworkConfig | None, AgentRecord | None]:
        return self.state.network, self.state.agents.get(ip)

    def pools(self) -> ClusterState:
        return self.state

    def status(self) -> dict[str, Any]:
        applied = self.state.revision
        return {
            "state": 0 if self.fault else 2,
            "raft_term": 1,
            "commit_idx": applied,
            "last_applied": applied,
        }

    def leader(self) -> str | None:
        return None if self.fault else self.self_address

    def role(self, status: dict[str, Any] | None = None) -> str:
        return "follower" if self.fault else "leader"

    def ready(self) -> tuple[bool, str]:
        if self.fault:
            return False, "no leader or no quorum in view"
        if self.state.network is None:
            return False, "no network config committed yet"
        return True, "ready"

    def alive(self) -> bool:
        return True
