"""The allocator: a pure, deterministic state machine (state + command -> result).

Design notes
------------
* Purity. No I/O, clock, randomness, logging or pysyncobj here. The same command sequence gives the
  same state on every replica, on any machine and any ``PYTHONHASHSEED``: all containers are
  insertion-ordered dicts, lists and deques of ints and strings; nothing iterates a set.
* Never raises. An exception inside a replicated method makes every replica re-apply the same entry
  forever, so ``ClusterState.apply`` validates commands up front and answers ``Rejected(reason)``.
  A last-resort guard turns an unexpected bug into ``Rejected("internal_error")``; because apply is
  deterministic, every replica takes the same path and they stay identical.
* Commands are plain data (dicts of str/int/bool/list), built by the functions at the bottom. Plain
  data pickles the same forever; our classes may move between modules.
* The network config itself is a command (``configure``). Replicas must allocate from the *same*
  config or they diverge, so the config lives in the log, and a config that drops or changes an
  existing network is rejected there (the recovery guard in ``node`` checks the same rule before
  proposing, so an operator gets a clear message instead of a rejected entry).
* Allocation semantics follow DC/OS (docs/dcos-overlay.md, "Allocation"): agent identity is its IP; the VTEP
  is the lowest free address of ``vtep_subnet`` and the MAC is derived from it; each enabled
  overlay gives the agent a ``/prefix`` block, halved into the Mesos (lower) and Docker (upper)
  bridges; re-registering returns the same allocation and only adds missing overlays. Ours differs
  where DC/OS hurt users: freed slots are reused last (see ``pool``), an agent that comes back gets
  its previous blocks if still free, nothing leaks when IPv6 allocation fails after IPv4, a VTEP is
  reserved even for an agent with no overlays, and exhaustion is reported with a reason.
* ``revision`` counts state changes. It advances exactly once per command that changes the state,
  in log order, so the same revision means the same state on every replica. Each agent record
  carries the revision of its last change; commands that change nothing do not advance it.
"""

from __future__ import annotations

from typing import Any

from overlay_master import addressing

# Commands and values live in their own modules; they are re-exported here because the allocator
# is their one entry point, and because PySyncObj snapshots written before the split pickled the
# values as ``overlay_master.allocator.<Name>``: those names must keep resolving.
from overlay_master.commands import (
    add_network,
    announce_replica,
    barrier,
    batch,
    configure,
    delete,
    delete_network,
    register,
    report_containers,
    report_status,
    update_network,
)
from overlay_master.drift import compatibility_problems
from overlay_master.errors import ConfigError
from overlay_master.lifecycle import NetworkLifecycle
from overlay_master.network import NetworkConfig
from overlay_master.pool import Pool
from overlay_master.records import (
    MAX_BATCH,
    AgentOverlay,
    AgentRecord,
    Batched,
    Configured,
    ContainerRecord,
    ContainersReported,
    Deleted,
    Departed,
    NetworkChanged,
    Registered,
    Rejected,
    ReplicaAnnounced,
    Result,
    Single,
    StatusRecorded,
    Synced,
)
from overlay_master.reports import AgentReports, canonical_ipv4
from overlay_master.validation import parse_network

__all__ = [
    "MAX_BATCH",
    "AgentOverlay",
    "AgentRecord",
    "Batched",
    "ClusterState",
    "Configured",
    "ContainerRecord",
    "ContainersReported",
    "Deleted",
    "Departed",
    "NetworkChanged",
    "Registered",
    "Rejected",
    "ReplicaAnnounced",
    "Result",
    "StatusRecorded",
    "Synced",
    "add_network",
    "announce_replica",
    "barrier",
    "batch",
    "configure",
    "delete",
    "delete_network",
    "register",
    "report_containers",
    "report_status",
    "update_network",
]

MAX_REPLICAS = 16
MAX_DEPARTED = 65536  # remembered allocations of deleted agents (for "come back, get the same")
MAX_ERROR_TEXT = 2000

# -- the state machine ----------------------------------------------------------------------------


class ClusterState(NetworkLifecycle, AgentReports):
    """The replicated state. Mutated only through ``apply``."""

    def __init__(self) -> None:
        self.network: NetworkConfig | None = None
        self.revision = 0
        self.agents: dict[str, AgentRecord] = {}
        self.vteps: Pool | None = None
        self.vteps6: Pool | None = None
        self.blocks: dict[str, Pool] = {}
        self.blocks6: dict[str, Pool] = {}
        self.departed: dict[str, Departed] = {}
        self.containers: dict[str, tuple[ContainerRecord, ...]] = {}
        self.replicas: dict[str, str] = {}  # Raft address -> HTTP URL, as each replica announced

    def __setstate__(self, state: dict[str, Any]) -> None:
        """Snapshots written before containers and replicas were kept lack those attributes."""
        self.__dict__.update(state)
        self.__dict__.setdefault("containers", {})
        self.__dict__.setdefault("replicas", {})

    def canonical(self) -> tuple[Any, ...]:
        """Plain data equal on two replicas exactly when their states are the same.

        Pickled bytes are not a reliable comparison (pickle's memo depends on object identity);
        this is. Used by tests and by the chaos checker to compare replicas.
        """

        def pools(p: dict[str, Pool]) -> tuple[Any, ...]:
            return tuple((name, pool.canonical()) for name, pool in p.items())

        return (
            self.network,
            self.revision,
            tuple(self.agents.values()),
            self.vteps.canonical() if self.vteps else None,
            self.vteps6.canonical() if self.vteps6 else None,
            pools(self.blocks),
            pools(self.blocks6),
            tuple(self.departed.items()),
            tuple(self.containers.items()),
            tuple(self.replicas.items()),
        )

    def apply(self, command: object) -> Result:
        """Apply one command. Never raises."""
        try:
            return self._dispatch(command)
        except Exception as e:  # noqa: BLE001 -- raising here would wedge every replica
            return Rejected("internal_error", f"{type(e).__name__}: {e}")

    def _dispatch(self, command: object) -> Result:
        if not isinstance(command, dict):
            return Rejected(
                "bad_command", f"a command must be a mapping, got {type(command).__name__}"
            )
        op = command.get("op")
        if op == "batch":
            return self._batch(command.get("commands"))
        if op == "barrier":
            return Synced(self.revision)
        if op == "replica":
            return self._announce(command.get("raft"), command.get("http"))
        if op == "configure":
            if command.get("seed") and self.network is not None:
                return Configured(self.revision, changed=False, added=())
            return self._configure(command.get("network"))
        if self.network is None:
            return Rejected("not_configured", "no network config has been committed yet")
        if op == "register":
            return self._register(command)
        if op == "delete":
            return self._delete(command.get("ips"))
        if op == "status":
            return self._status(command)
        if op == "containers":
            return self._report_containers(command)
        if op == "add_network":
            return self._add_network(command.get("overlay"))
        if op == "update_network":
            return self._update_network(command)
        if op == "delete_network":
            return self._delete_network(command)
        return Rejected("bad_command", f"unknown op {op!r}")

    def _batch(self, commands: object) -> Result:
        if not isinstance(commands, list) or len(commands) > MAX_BATCH:
            return Rejected("bad_command", f"a batch needs a list of at most {MAX_BATCH} commands")
        results: list[Single] = []
        for command in commands:
            if isinstance(command, dict) and command.get("op") == "batch":
                results.append(Rejected("bad_command", "batches do not nest"))
                continue
            result = self.apply(command)
            assert not isinstance(result, Batched)
            results.append(result)
        return Batched(tuple(results))

    def _announce(self, raft: object, http: object) -> Result:
        """Where a replica serves HTTP, so that any replica can show (and ask) the others."""
        if not isinstance(raft, str) or not isinstance(http, str) or not raft or not http:
            return Rejected("bad_command", "a replica announces its Raft address and HTTP URL")
        if len(self.replicas) >= MAX_REPLICAS and raft not in self.replicas:
            return Rejected("bad_command", f"at most {MAX_REPLICAS} replicas are kept")
        if self.replicas.get(raft) == http:
            return ReplicaAnnounced(raft, self.revision, changed=False)
        self.revision += 1
        self.replicas[raft] = http
        return ReplicaAnnounced(raft, self.revision, changed=True)

    # -- configure --------------------------------------------------------------------------------

    def _configure(self, plain: object) -> Result:
        try:
            new = parse_network(plain, source="configure command")
        except ConfigError as e:
            return Rejected("invalid_config", str(e))
        if self.network is not None:
            problems = compatibility_problems(self.network, new)
            if problems:
                return Rejected("network_changed", "; ".join(problems))
        old = self.network
        if old == new:
            return Configured(self.revision, changed=False, added=())
        added = tuple(o.name for o in new.overlays if old is None or old.overlay(o.name) is None)
        self.network = new
        if self.vteps is None:
            self.vteps = Pool(addressing.vtep_pool_size(new.vtep_subnet))
        if self.vteps6 is None and new.vtep_subnet6 is not None:
            self.vteps6 = Pool(addressing.vtep_pool_size(new.vtep_subnet6))
        for overlay in new.overlays:
            if overlay.name not in self.blocks and overlay.name not in self.blocks6:
                self._create_pools(overlay)
        self.revision += 1
        return Configured(self.revision, changed=True, added=added)

    # -- register ---------------------------------------------------------------------------------

    def _register(self, command: dict[str, Any]) -> Result:
        ip = canonical_ipv4(command.get("ip"))
        if ip is None:
            return Rejected("invalid_ip", f"agent ip {command.get('ip')!r} is not an IPv4 address")
        mesos, docker = command.get("mesos_bridge", True), command.get("docker_bridge", True)
        if not isinstance(mesos, bool) or not isinstance(docker, bool):
            return Rejected("bad_command", "mesos_bridge and docker_bridge must be booleans")
        assert self.network is not None and self.vteps is not None
        existing = self.agents.get(ip)
        departed = self.departed.get(ip) if existing is None else None
        want_vtep = departed.vtep if departed else None
        want_vtep6 = departed.vtep6 if departed else None
        if existing is None and not self.vteps.can_take(want_vtep):
            return Rejected(
                "vtep_exhausted", f"no free VTEP address left in {self.network.vtep_subnet}"
            )
        needs_vtep6 = self.vteps6 is not None and (existing is None or existing.vtep6 is None)
        if needs_vtep6 and self.vteps6 is not None and not self.vteps6.can_take(want_vtep6):
            return Rejected(
                "vtep6_exhausted", f"no free IPv6 VTEP address left in {self.network.vtep_subnet6}"
            )
        if existing is None:
            vtep = self.vteps.take(want_vtep)
            assert vtep is not None
            vtep_ip = addressing.vtep_interface(self.network.vtep_subnet, vtep)
            vtep_mac = addressing.vtep_mac_of_slot(
                self.network.vtep_mac_oui, self.network.vtep_subnet, vtep
            )
            vtep6, vtep_ip6 = None, None
            current: tuple[AgentOverlay, ...] = ()
        else:
            vtep, vtep_ip, vtep_mac = existing.vtep, existing.vtep_ip, existing.vtep_mac
            vtep6, vtep_ip6, current = existing.vtep6, existing.vtep_ip6, existing.overlays
        if needs_vtep6 and self.vteps6 is not None and self.network.vtep_subnet6 is not None:
            vtep6 = self.vteps6.take(want_vtep6)
            assert vtep6 is not None
            vtep_ip6 = addressing.vtep_interface(self.network.vtep_subnet6, vtep6)
        overlays, skipped = self._add_missing_overlays(current, departed, mesos, docker)
        if existing is not None and (vtep6, overlays, skipped) == (
            existing.vtep6,
            existing.overlays,
            existing.skipped,
        ):
            return Registered(existing, self.revision, changed=False)
        if existing is not None:  # as DC/OS: bridge flags of a re-registration change nothing
            mesos, docker = existing.mesos_bridge, existing.docker_bridge
        self.revision += 1
        record = AgentRecord(
            ip,
            vtep,
            vtep6,
            vtep_ip,
            vtep_ip6,
            vtep_mac,
            overlays,
            skipped,
            self.revision,
            mesos,
            docker,
        )
        self.agents[ip] = record
        self.departed.pop(ip, None)
        return Registered(record, self.revision, changed=True)

    # -- delete -----------------------------------------------------------------------------------

    def _delete(self, ips: object) -> Result:
        if not isinstance(ips, list) or not all(isinstance(ip, str) for ip in ips):
            return Rejected("bad_command", "delete needs a list of agent IPs")
        canonical = []
        for raw in ips:
            ip = canonical_ipv4(raw)
            if ip is None:
                return Rejected("invalid_ip", f"agent ip {raw!r} is not an IPv4 address")
            canonical.append(ip)
        deleted: list[str] = []
        for ip in dict.fromkeys(canonical):  # each agent once, in the order given
            record = self.agents.pop(ip, None)
            if record is not None:
                self._release(record)
                self._forget_containers(ip=ip)
                deleted.append(ip)
        if not deleted:
            return Deleted((), self.revision)
        self.revision += 1
        return Deleted(tuple(deleted), self.revision)

    def _release(self, record: AgentRecord) -> None:
        """Free each slot exactly once (DC/OS freed a shared v4/v6 VTEP twice and crashed)."""
        assert self.vteps is not None
        self.vteps.release(record.vtep)
        if record.vtep6 is not None and self.vteps6 is not None:
            self.vteps6.release(record.vtep6)
        for overlay in record.overlays:
            pool, pool6 = self.blocks.get(overlay.name), self.blocks6.get(overlay.name)
            if overlay.block is not None and pool is not None:
                pool.release(overlay.block)
            if overlay.block6 is not None and pool6 is not None:
                pool6.release(overlay.block6)
        blocks = tuple((o.name, o.block, o.block6) for o in record.overlays)
        self.departed.pop(record.ip, None)
        self.departed[record.ip] = Departed(record.vtep, record.vtep6, blocks)
        while len(self.departed) > MAX_DEPARTED:
            del self.departed[next(iter(self.departed))]
