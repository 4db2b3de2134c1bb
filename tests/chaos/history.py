"""The recorded history: one ``Op`` per HTTP attempt, written as JSON lines for the post-mortem.

Outcomes follow Jepsen: ``ok`` (the answer is known), ``failed`` (certainly had no effect:
never sent, or a definite rejection), ``unknown`` (a write that may have been applied: a 503,
a timeout or a broken connection after the request went out). Reads never have effects, so a
read without an answer is ``failed``.

An allocation is reduced to the values that must be unique and stable: VTEP IPv4/IPv6 and MAC,
and each overlay's IPv4/IPv6 block (``Allocation``). Times are ``time.monotonic()`` seconds
since the run started, taken in the driver process (one clock for every operation).
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO, Any

OK, FAILED, UNKNOWN = "ok", "failed", "unknown"
REGISTER, READ, DELETE = "register", "read", "delete"


@dataclass(frozen=True)
class Allocation:
    vtep_ip: str | None
    vtep_ip6: str | None
    vtep_mac: str | None
    subnets: tuple[tuple[str, str | None, str | None], ...]  # (overlay, subnet, subnet6)

    def resources(self) -> list[tuple[str, str]]:
        """(kind, value) pairs no two live agents may share."""
        found = [
            ("vtep_ip", self.vtep_ip),
            ("vtep_ip6", self.vtep_ip6),
            ("vtep_mac", self.vtep_mac),
        ]
        for name, subnet, subnet6 in self.subnets:
            found += [(f"subnet:{name}", subnet), (f"subnet6:{name}", subnet6)]
        return [(kind, value) for kind, value in found if value is not None]

    def plain(self) -> dict[str, Any]:
        return asdict(self)

    @staticmethod
    def from_plain(plain: dict[str, Any]) -> Allocation:
        subnets = tuple((s[0], s[1], s[2]) for s in plain["subnets"])
        return Allocation(plain["vtep_ip"], plain["vtep_ip6"], plain["vtep_mac"], subnets)


CHURN = "churn"  # networks the workload's operator adds and deletes while agents come and go


def allocation(record: dict[str, Any], churn: bool = False) -> Allocation:
    """The allocation in an agent record (docs/api.md shape).

    Without ``churn``, blocks of the networks the operator adds and deletes are left out: they
    come and go without the agent doing anything, so the per-agent model (register, read,
    delete) covers the VTEP and the stable networks. Uniqueness checks take them in."""
    vxlan: dict[str, Any] = {}
    subnets = []
    for overlay in record.get("overlays", []):
        vxlan = overlay.get("backend", {}).get("vxlan", vxlan)
        name = overlay["info"]["name"]
        if name.startswith(CHURN) and not churn:
            continue
        subnets.append((name, overlay.get("subnet"), overlay.get("subnet6")))
    return Allocation(
        vxlan.get("vtep_ip"), vxlan.get("vtep_ip6"), vxlan.get("vtep_mac"), tuple(sorted(subnets))
    )


def outside_live_networks(state: dict[str, Any]) -> list[str]:
    """Blocks an agent holds of a network that is not in the state's network list, or outside
    that network's address space: what deleting networks must never leave behind."""
    spaces = {o["name"]: (o.get("subnet"), o.get("subnet6")) for o in state["network"]["overlays"]}
    problems = []
    for agent in state["agents"]:
        for overlay in agent.get("overlays", []):
            name = overlay["info"]["name"]
            if name not in spaces:
                problems.append(
                    f"{agent['ip']} holds {overlay.get('subnet')} of network "
                    f"{name}, which is not live"
                )
                continue
            for block, space in zip(
                (overlay.get("subnet"), overlay.get("subnet6")), spaces[name], strict=True
            ):
                if block is not None and (
                    space is None
                    or not ipaddress.ip_network(block).subnet_of(ipaddress.ip_network(space))  # type: ignore[arg-type]
                ):
                    problems.append(f"{agent['ip']} holds {block} outside network {name} {space}")
    return problems


def shared(allocations: Sequence[tuple[str, Allocation]]) -> list[str]:
    """Descriptions of every resource held by more than one agent in one answer or state."""
    holders: dict[tuple[str, str], str] = {}
    problems = []
    for ip, alloc in allocations:
        for resource in alloc.resources():
            other = holders.setdefault(resource, ip)
            if other != ip:
                problems.append(f"{resource[0]} {resource[1]} held by {other} and {ip}")
    return problems


@dataclass
class Op:
    id: int
    agent: str
    kind: str  # register | read | delete
    replica: int
    invoke: float
    complete: float | None = None
    outcome: str | None = None
    status: int | None = None
    value: Allocation | None = None  # register/read answers; None on a read means 404
    error: str | None = None

    def plain(self) -> dict[str, Any]:
        plain = asdict(self)
        plain["value"] = None if self.value is None else self.value.plain()
        return plain

    @staticmethod
    def from_plain(plain: dict[str, Any]) -> Op:
        value = plain.get("value")
        return Op(**{**plain, "value": None if value is None else Allocation.from_plain(value)})


class Recorder:
    """Keeps every op in memory and appends each completed one to ``history.jsonl``."""

    def __init__(self, path: Path, clock_zero: float) -> None:
        self.path = path
        self.zero = clock_zero
        self.ops: list[Op] = []
        self._file: IO[str] = path.open("w")

    def begin(self, agent: str, kind: str, replica: int, now: float) -> Op:
        op = Op(len(self.ops), agent, kind, replica, now - self.zero)
        self.ops.append(op)
        return op

    def end(
        self,
        op: Op,
        now: float,
        outcome: str,
        status: int | None = None,
        value: Allocation | None = None,
        error: str | None = None,
    ) -> None:
        op.complete, op.outcome, op.status, op.value, op.error = (
            now - self.zero,
            outcome,
            status,
            value,
            error,
        )
        self._file.write(json.dumps(op.plain(), separators=(",", ":")) + "\n")

    def close(self) -> None:
        self._file.close()


def load(path: Path) -> list[Op]:
    with path.open() as f:
        return [Op.from_plain(json.loads(line)) for line in f if line.strip()]
