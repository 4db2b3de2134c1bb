"""What agents report (pure): each overlay's status, and the containers on each agent's bridges.

Design notes
------------
* Both go through the log like every write, so every replica answers the same and a report
  survives failover. Each report is checked whole before anything changes (one bad entry refuses
  the report: an agent with a bug is seen at once, and nothing half-applied is stored).
* A container report is *replaced whole*, never merged: the agent sends the full list of
  containers on its bridges (level-triggered) whenever it changes. The same list again changes
  nothing and does not advance the revision. A deleted agent's containers go with it, and a
  deleted network's containers with the network.
* A report names containers by network and bridge half; the address must lie in that agent's
  half, so a report can never claim an address the agent was not given.
"""

from __future__ import annotations

import ipaddress
from dataclasses import replace
from typing import Any

from overlay_master.network import NetworkConfig
from overlay_master.records import (
    AgentRecord,
    ContainerRecord,
    ContainersReported,
    Rejected,
    Result,
    StatusRecorded,
)
from overlay_wire.contract import HALVES, STATUSES

MAX_ERROR_TEXT = 2000
MAX_CONTAINERS = 65536  # per agent: far beyond any bridge half (a /17 half holds 32,765)
MAX_TEXT = 256  # container IDs, names, interface names


class AgentReports:
    """The report commands of ``allocator.ClusterState`` (mixed into it)."""

    network: NetworkConfig | None
    revision: int
    agents: dict[str, AgentRecord]
    containers: dict[str, tuple[ContainerRecord, ...]]

    # -- statuses ---------------------------------------------------------------------------------

    def _status(self, command: dict[str, Any]) -> Result:
        record = self.agents.get(canonical_ipv4(command.get("ip")) or "")
        if record is None:
            return Rejected("unknown_agent", f"agent {command.get('ip')!r} is not registered")
        reports = command.get("overlays")
        if not isinstance(reports, list):
            return Rejected("bad_command", "status needs a list of overlay reports")
        updates: dict[str, tuple[str, str | None]] = {}
        for report in reports:
            problem = _check_status(report, record)
            if problem is not None:
                return problem
            error = report.get("error") or None
            updates[report["name"]] = (report["status"], error[:MAX_ERROR_TEXT] if error else None)
        overlays = tuple(
            replace(o, status=updates[o.name][0], error=updates[o.name][1])
            if o.name in updates
            else o
            for o in record.overlays
        )
        if overlays == record.overlays:
            return StatusRecorded(record, self.revision, changed=False)
        self.revision += 1
        record = replace(record, overlays=overlays, revision=self.revision)
        self.agents[record.ip] = record
        return StatusRecorded(record, self.revision, changed=True)

    # -- containers -------------------------------------------------------------------------------

    def _report_containers(self, command: dict[str, Any]) -> Result:
        record = self.agents.get(canonical_ipv4(command.get("ip")) or "")
        if record is None:
            return Rejected("unknown_agent", f"agent {command.get('ip')!r} is not registered")
        entries = command.get("containers")
        if not isinstance(entries, list) or len(entries) > MAX_CONTAINERS:
            return Rejected("bad_command", f"containers must be a list of at most {MAX_CONTAINERS}")
        parsed: list[ContainerRecord] = []
        for index, entry in enumerate(entries):
            container = _container(entry, record)
            if isinstance(container, str):
                return Rejected("invalid_report", f"containers[{index}]: {container}")
            parsed.append(container)
        ordered = tuple(sorted(parsed, key=lambda c: (c.network, c.half, c.id, c.interface)))
        if len({(c.network, c.half, c.id, c.interface) for c in ordered}) != len(ordered):
            return Rejected("invalid_report", "a container is listed twice on one bridge")
        if self.containers.get(record.ip) == ordered:
            return ContainersReported(record.ip, self.revision, False, len(ordered))
        self.revision += 1
        self.containers[record.ip] = ordered
        return ContainersReported(record.ip, self.revision, True, len(ordered))

    def _forget_containers(self, ip: str | None = None, network: str | None = None) -> None:
        """Drop an agent's report, or every container on a network (no revision of its own)."""
        if ip is not None:
            self.containers.pop(ip, None)
        if network is not None:
            for agent, listed in list(self.containers.items()):
                kept = tuple(c for c in listed if c.network != network)
                if kept != listed:
                    self.containers[agent] = kept

    def network_users(self, name: str) -> list[str]:
        """Agents that may have containers on network ``name``: those reporting some, and those
        holding a block that never reported (they may run containers we do not know of)."""
        users = []
        for ip, record in self.agents.items():
            listed = self.containers.get(ip)
            if (listed is None and record.overlay(name) is not None) or (
                listed is not None and any(c.network == name for c in listed)
            ):
                users.append(ip)
        return users


def _check_status(report: object, record: AgentRecord) -> Rejected | None:
    if not isinstance(report, dict):
        return Rejected("bad_command", "each overlay report must be a mapping")
    name, status, error = report.get("name"), report.get("status"), report.get("error")
    if not isinstance(name, str) or record.overlay(name) is None:
        return Rejected("unknown_overlay", f"agent {record.ip} has no overlay {name!r}")
    if status not in STATUSES:
        return Rejected("bad_status", f"status {status!r} is not one of {', '.join(STATUSES)}")
    if error is not None and not isinstance(error, str):
        return Rejected("bad_command", "error must be a string")
    return None


def _container(entry: object, record: AgentRecord) -> ContainerRecord | str:
    """One reported container, checked against what the agent holds; a problem as text."""
    if not isinstance(entry, dict):
        return "must be an object"
    texts = {k: entry.get(k) for k in ("id", "network", "half", "name", "mac", "interface")}
    for key, value in texts.items():
        required = key in ("id", "network", "half")
        if (value is None and required) or (
            value is not None and (not isinstance(value, str) or not 0 < len(value) <= MAX_TEXT)
        ):
            return f"{key} must be a non-empty string of at most {MAX_TEXT} characters"
    overlay = record.overlay(str(texts["network"]))
    if overlay is None:
        return f"agent {record.ip} holds no block of network {texts['network']!r}"
    if texts["half"] not in HALVES or not getattr(overlay, f"{texts['half']}_bridge"):
        return (
            f"half must be one of the agent's bridges ({', '.join(HALVES)}), not {texts['half']!r}"
        )
    addresses: list[str | None] = []
    for key, block in (("address", overlay.subnet), ("address6", overlay.subnet6)):
        value = entry.get(key)
        if value is None:
            addresses.append(None)
            continue
        problem = _in_half(value, block, str(texts["half"]))
        if problem:
            return f"{key} {value!r} {problem}"
        addresses.append(str(ipaddress.ip_address(value)))
    if addresses == [None, None]:
        return "needs an address or an address6"
    return ContainerRecord(
        id=str(texts["id"]),
        network=overlay.name,
        half=str(texts["half"]),
        address=addresses[0],
        address6=addresses[1],
        name=texts["name"],
        mac=texts["mac"],
        interface=texts["interface"],
    )


def _in_half(value: object, block: str | None, half: str) -> str | None:
    if not isinstance(value, str) or block is None:
        return "is not in a block this agent holds"
    try:
        address = ipaddress.ip_address(value)
        lower, upper = ipaddress.ip_network(block).subnets(prefixlen_diff=1)
    except ValueError:
        return "is not an IP address"
    if address not in (lower if half == "mesos" else upper):
        return f"is not in the agent's {half} half of {block}"
    return None


def canonical_ipv4(value: object) -> str | None:
    if not isinstance(value, str):
        return None
    try:
        return str(ipaddress.IPv4Address(value))
    except ValueError:
        return None
