"""The checker: the history and the replicas' final states against what the master promises.

Per agent (the history splits by agent key, P-compositionality), a Wing-Gong/Lowe search
(WGL, as in Porcupine/Knossos) over a tiny model decides whether the agent's operations are
linearizable:

    state  ABSENT | ANY (registered, allocation not seen yet) | an Allocation
    register -> v   ABSENT/ANY become v; a registered agent must get its allocation back
    read -> v|404   must match (ANY binds to v)
    delete          -> ABSENT

An unknown-outcome write may take effect at any time after it was invoked, or never: it gets a
return time after everything else and its answer is not checked (taking effect "after the end"
is the same as never). Failed operations and unanswered reads have no effect and are left out.

The same search with one more read appended (each agent's record in the final, converged state)
finds acknowledged registrations that were lost (``lost``) or changed (``changed``) while no
delete can explain it. ``changed`` also counts re-registrations answered with another allocation
while no delete could have happened in between.

Uniqueness (``duplicate``): no two agents share a VTEP IP/IPv6/MAC or an overlay block in any
replica's final state, in any whole-state answer (checked by the workload as they arrive), or in
two time-overlapping acknowledged answers of agents neither of which had a delete in flight.
"""

from __future__ import annotations

import itertools
import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tests.chaos.history import (
    DELETE,
    OK,
    READ,
    REGISTER,
    UNKNOWN,
    Allocation,
    Op,
    outside_live_networks,
    shared,
)

ABSENT = "absent"
ANY = "any"
INFINITY = float("inf")
SEARCH_BUDGET = 2_000_000

State = str | Allocation


@dataclass(frozen=True)
class Event:
    """One operation as the linearizability search sees it."""

    kind: str
    invoke: float
    complete: float  # INFINITY for an unknown outcome
    value: Allocation | None  # answer of a read or register (None: 404, or unknown)
    known: bool  # False: outcome unknown, answer not checked


def step(state: State, event: Event) -> State | None:
    """The model: the next state, or None if ``event`` cannot happen in ``state``."""
    if event.kind == DELETE:
        return ABSENT
    if event.kind == REGISTER:
        if not event.known:
            return ANY if state == ABSENT else state
        if state in (ABSENT, ANY) or state == event.value:
            return event.value
        return None
    # read
    if event.value is None:
        return state if state == ABSENT else None
    if state in (ANY, event.value):
        return event.value
    return None


class SearchBudgetExceeded(Exception):
    pass


def linearizable(events: Sequence[Event], budget: int = SEARCH_BUDGET) -> bool:
    """Wing & Gong's search with Lowe's memoisation, over calls and returns sorted by time."""
    n = len(events)
    entries = sorted(
        [(e.invoke, 0, i) for i, e in enumerate(events)]
        + [(e.complete, 1, i) for i, e in enumerate(events)]
    )
    # doubly linked list over entries; node 0 is the head sentinel
    size = len(entries) + 1
    nxt, prv = list(range(1, size + 1)), list(range(-1, size - 1))
    nxt[-1] = -1
    call_node, return_node = [0] * n, [0] * n
    for position, (_, is_return, i) in enumerate(entries, start=1):
        (return_node if is_return else call_node)[i] = position
    op_at = [-1] + [i for _, _, i in entries]
    is_call = [False] + [not r for _, r, _ in entries]

    def lift(i: int) -> None:
        for node in (call_node[i], return_node[i]):
            nxt[prv[node]] = nxt[node]
            if nxt[node] != -1:
                prv[nxt[node]] = prv[node]

    def unlift(i: int) -> None:
        for node in (return_node[i], call_node[i]):
            if nxt[node] != -1:
                prv[nxt[node]] = node
            nxt[prv[node]] = node

    state: State = ABSENT
    done = 0  # bitset of linearized events
    seen: set[tuple[int, State]] = set()
    stack: list[tuple[int, State]] = []
    node, steps = nxt[0], 0
    while nxt[0] != -1:
        steps += 1
        if steps > budget:
            raise SearchBudgetExceeded
        if node != -1 and is_call[node]:
            i = op_at[node]
            after = step(state, events[i])
            if after is not None and (done | 1 << i, after) not in seen:
                seen.add((done | 1 << i, after))
                stack.append((i, state))
                state, done = after, done | 1 << i
                lift(i)
                node = nxt[0]
                continue
            node = nxt[node]
            continue
        if not stack:
            return False
        i, state = stack.pop()
        done &= ~(1 << i)
        unlift(i)
        node = nxt[call_node[i]]
    return True


def events_of(ops: Iterable[Op]) -> list[Event]:
    found = []
    for op in ops:
        assert op.complete is not None
        if op.outcome == OK:
            found.append(Event(op.kind, op.invoke, op.complete, op.value, True))
        elif op.outcome == UNKNOWN and op.kind != READ:
            found.append(Event(op.kind, op.invoke, INFINITY, None, False))
    return found


# -- the report -------------------------------------------------------------------------------------


@dataclass
class Report:
    ops: int = 0
    ok: int = 0
    failed: int = 0
    unknown: int = 0
    faults: int = 0
    power_cuts_two: int = 0  # faults that cut the power of two masters
    power_cuts_all: int = 0  # ... of all three
    network_changes: int = 0  # networks added and deleted by the workload's operator
    lost: int = 0
    duplicate: int = 0
    changed: int = 0
    non_linearizable: int = 0
    outside_network: int = 0  # blocks held of a network not live, or outside its space
    undecided: int = 0
    healed_in: float | None = None
    truncating: int = 0
    tick_exceptions: int = 0
    tracebacks: int = 0
    violations: list[str] = field(default_factory=list)

    def add(self, counter: str, messages: Iterable[str]) -> None:
        messages = list(messages)
        setattr(self, counter, getattr(self, counter) + len(messages))
        self.violations += messages

    def figure(self, seed: int) -> str:
        healed = "not healed" if self.healed_in is None else f"healed in {self.healed_in:.1f} s"
        return (
            f"chaos seed={seed}: {self.ops} ops ({self.ok} ok, {self.failed} failed, "
            f"{self.unknown} unknown), {self.faults} faults ({self.power_cuts_two} power cuts of "
            f"two masters, {self.power_cuts_all} of all three), {self.network_changes} network "
            f"changes, {self.lost} lost, {self.duplicate} duplicate, {self.changed} changed, "
            f"{self.non_linearizable} non-linearizable, {self.outside_network} outside a live "
            f"network, {healed}; logs: {self.truncating} "
            f"truncating, {self.tick_exceptions} tick exceptions, {self.tracebacks} tracebacks"
        )


def count_outcomes(report: Report, ops: Sequence[Op]) -> None:
    report.ops = len(ops)
    report.ok = sum(op.outcome == OK for op in ops)
    report.unknown = sum(op.outcome == UNKNOWN for op in ops)
    report.failed = report.ops - report.ok - report.unknown


def by_agent(ops: Iterable[Op]) -> dict[str, list[Op]]:
    grouped: dict[str, list[Op]] = defaultdict(list)
    for op in ops:
        grouped[op.agent].append(op)
    return grouped


def check_agents(
    report: Report, ops: Sequence[Op], final: dict[str, Allocation], end: float
) -> None:
    """Linearizability per agent, then lost/changed against the final state."""
    for agent, agent_ops in sorted(by_agent(ops).items()):
        report.add("changed", reregistration_changes(agent, agent_ops))
        events = events_of(agent_ops)
        try:
            if not linearizable(events):
                report.add("non_linearizable", [f"agent {agent}: history is not linearizable"])
                continue
            last = Event(READ, end, end, final.get(agent), True)
            if not linearizable([*events, last]):
                counter = "lost" if agent not in final else "changed"
                report.add(counter, [f"agent {agent}: final state {final.get(agent)} {counter}"])
        except SearchBudgetExceeded:
            report.add("undecided", [f"agent {agent}: linearizability search gave up"])


def reregistration_changes(agent: str, ops: Sequence[Op]) -> list[str]:
    """Two acknowledged registrations with different answers and no possible delete between."""
    problems = []
    registers = [op for op in ops if op.kind == REGISTER and op.outcome == OK]
    deletes = [op for op in ops if op.kind == DELETE and op.outcome in (OK, UNKNOWN)]
    for first, second in itertools.pairwise(registers):
        assert first.complete is not None and second.complete is not None
        if first.value == second.value:
            continue
        if any(_may_fall_between(d, first, second) for d in deletes):
            continue
        problems.append(
            f"agent {agent}: re-registration (op {second.id}) answered {second.value}, "
            f"op {first.id} answered {first.value}"
        )
    return problems


def _may_fall_between(delete: Op, first: Op, second: Op) -> bool:
    assert delete.complete is not None and second.complete is not None
    if delete.outcome == UNKNOWN:
        return delete.invoke < second.complete
    return delete.invoke < second.complete and delete.complete > first.invoke


def check_overlapping_answers(report: Report, ops: Sequence[Op]) -> None:
    """No two agents may hold one resource in time-overlapping acknowledged answers, unless a
    delete of one of them was in flight in that time (then the resource may have moved)."""
    holders: dict[tuple[str, str], list[Op]] = defaultdict(list)
    for op in ops:
        if op.outcome == OK and op.value is not None:
            for resource in op.value.resources():
                holders[resource].append(op)
    deletes = by_agent(op for op in ops if op.kind == DELETE and op.outcome in (OK, UNKNOWN))
    problems = []
    for resource, answers in holders.items():
        if len({op.agent for op in answers}) < 2:
            continue
        for a, b in _overlapping_pairs(answers):
            lo, hi = min(a.invoke, b.invoke), max(_end(a), _end(b))
            if any(_in_flight(d, lo, hi) for d in deletes[a.agent] + deletes[b.agent]):
                continue
            problems.append(
                f"{resource[0]} {resource[1]}: op {a.id} ({a.agent}) and op {b.id} ({b.agent})"
            )
    report.add("duplicate", problems)


def _end(op: Op) -> float:
    return INFINITY if op.complete is None else op.complete


def _overlapping_pairs(answers: list[Op]) -> Iterable[tuple[Op, Op]]:
    answers = sorted(answers, key=lambda op: op.invoke)
    for i, a in enumerate(answers):
        for b in answers[i + 1 :]:
            if b.invoke > _end(a):
                break
            if b.agent != a.agent:
                yield a, b


def _in_flight(delete: Op, lo: float, hi: float) -> bool:
    end = INFINITY if delete.outcome == UNKNOWN else _end(delete)
    return delete.invoke < hi and end > lo


def check_final_networks(report: Report, bodies: Sequence[dict[str, object]]) -> None:
    for index, body in enumerate(bodies):
        problems = outside_live_networks(body)
        report.add("outside_network", [f"replica {index + 1} final state: {p}" for p in problems])


def check_final_states(report: Report, states: Sequence[list[tuple[str, Allocation]]]) -> None:
    for index, allocations in enumerate(states):
        report.add(
            "duplicate", [f"replica {index + 1} final state: {p}" for p in shared(allocations)]
        )


# -- replica logs -----------------------------------------------------------------------------------

TRUNCATING = re.compile(r"truncating already-applied")
TICK_EXCEPTION = re.compile(r"failed _onTick|failed to perform initialization")
TRACEBACK = re.compile(r"^Traceback \(most recent call last\)", re.MULTILINE)


def check_logs(report: Report, logs: Iterable[Path]) -> None:
    for log in logs:
        text = log.read_text(errors="replace") if log.exists() else ""
        truncating = len(TRUNCATING.findall(text))
        ticks = len(TICK_EXCEPTION.findall(text))
        tracebacks = len(TRACEBACK.findall(text))
        report.truncating += truncating
        report.tick_exceptions += ticks
        report.tracebacks += tracebacks
        for count, what in (
            (truncating, "'truncating already-applied' lines"),
            (ticks, "tick exceptions"),
            (tracebacks, "tracebacks"),
        ):
            if count:
                report.violations.append(f"{log.name}: {count} {what}")
