"""The allocator's values: what an agent holds, and the results commands answer with.

All frozen dataclasses of plain values: they are pickled into PySyncObj's snapshot (the full
dump), so a field added later needs a default (an old snapshot then reads the class default).
"""

from __future__ import annotations

from dataclasses import dataclass

MAX_BATCH = 512

# -- what agents hold ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AgentOverlay:
    """One overlay on one agent: its block(s), which bridges it asked for, the reported status."""

    name: str
    block: int | None  # slot in the overlay's IPv4 block pool
    block6: int | None
    subnet: str | None  # the block as text, e.g. "9.0.0.64/26"
    subnet6: str | None
    mesos_bridge: bool
    docker_bridge: bool
    status: str | None = None
    error: str | None = None


@dataclass(frozen=True)
class AgentRecord:
    """Everything allocated to one agent. Immutable: a change makes a new record."""

    ip: str
    vtep: int  # slot in the VTEP pool
    vtep6: int | None
    vtep_ip: str  # "44.128.0.1/20"
    vtep_ip6: str | None
    vtep_mac: str  # "70:b3:d5:80:00:01"
    overlays: tuple[AgentOverlay, ...]
    skipped: tuple[tuple[str, str], ...]  # (overlay name, reason) not allocated for this agent
    revision: int
    # The bridges its first registration asked for (as DC/OS, later registrations change no
    # allocation): networks added later are given the same.
    # None in records made before these were kept (see ``bridges``).
    mesos_bridge: bool | None = None
    docker_bridge: bool | None = None

    @property
    def bridges(self) -> tuple[bool, bool]:
        """(Mesos, Docker) bridges for a network added later. Records from before the flags were
        kept: as their overlays have them; an agent with no overlay at all gets both."""
        if self.mesos_bridge is not None and self.docker_bridge is not None:
            return self.mesos_bridge, self.docker_bridge
        if not self.overlays:
            return True, True
        return (
            any(o.mesos_bridge for o in self.overlays),
            any(o.docker_bridge for o in self.overlays),
        )

    def overlay(self, name: str) -> AgentOverlay | None:
        for overlay in self.overlays:
            if overlay.name == name:
                return overlay
        return None


@dataclass(frozen=True)
class ContainerRecord:
    """A container on one agent's bridge, as its agent last reported it."""

    id: str  # the container ID the CNI runtime or Docker gave it
    network: str
    half: str  # "mesos" (m-<network>, CNI) or "docker" (d-<network>)
    address: str | None  # IPv4, no prefix
    address6: str | None = None
    name: str | None = None  # Docker's container name; CNI runtimes give none
    mac: str | None = None
    interface: str | None = None  # the interface name inside the container (CNI)


@dataclass(frozen=True)
class Departed:
    """What a deleted agent held, so that it can get the same back if it returns while free."""

    vtep: int
    vtep6: int | None
    blocks: tuple[tuple[str, int | None, int | None], ...]


# -- results --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Rejected:
    """The command was not applied. ``reason`` is machine-readable, ``message`` is for people."""

    reason: str
    message: str


@dataclass(frozen=True)
class Configured:
    revision: int
    changed: bool
    added: tuple[str, ...]


@dataclass(frozen=True)
class Registered:
    agent: AgentRecord
    revision: int
    changed: bool


@dataclass(frozen=True)
class Deleted:
    ips: tuple[str, ...]
    revision: int


@dataclass(frozen=True)
class StatusRecorded:
    agent: AgentRecord
    revision: int
    changed: bool


@dataclass(frozen=True)
class NetworkChanged:
    """A network was added, updated or deleted; ``agents`` are the records that changed."""

    name: str
    action: str  # "added" | "updated" | "deleted"
    revision: int
    changed: bool
    agents: tuple[str, ...] = ()


@dataclass(frozen=True)
class ContainersReported:
    agent: str
    revision: int
    changed: bool
    count: int


@dataclass(frozen=True)
class ReplicaAnnounced:
    raft: str
    revision: int
    changed: bool


@dataclass(frozen=True)
class Synced:
    """Answer to a barrier: the revision at this point of the log."""

    revision: int


Single = (
    Rejected
    | Configured
    | Registered
    | Deleted
    | StatusRecorded
    | NetworkChanged
    | ContainersReported
    | ReplicaAnnounced
    | Synced
)


@dataclass(frozen=True)
class Batched:
    """Answers to a batch, one per command, in order."""

    results: tuple[Single, ...]


Result = Single | Batched
