"""Live changes at 1,000 agents (issues 11 and 12): a network added, a container reported.

A cluster of its own (three replicas, DC/OS's default two overlays) with 1,000 registered agents
and 1,000 agent-style long polls (``bench.loadgen watch``, spread over the replicas), plus a few
watchers as the Networking page makes them (``include=containers``).

- **Network added to every agent's kernel** (issue 11, goal p99 under 1 s): 1,000 agent
  processes with namespaces do not fit this machine, so the figure is composed of two measured
  parts. (1) Master to watch: a round deletes the previous round's network, then times from just
  before ``POST /overlay-master/networks`` (which gives every agent a block in the same log
  entry) until every agent watcher holds the new revision (p99 over the watchers). (2) One real
  agent's pass (``bench.network_pass``, in a namespace): from the very watch answer that added a
  network (bytes, as an agent receives them) to the kernel, firewall and CNI configuration
  holding the new network. Composed: median of the rounds' p99s plus the median pass.
- **Container reported to visible on the page** (issue 12): a round has one agent report a
  container list, then another; timed from just before the ``PUT .../containers`` until every
  page watcher holds the new revision (p99 over them). The 1,000 agent watchers are woken too.
- **Container-report write rate** (issue 12): 32 clients writing reports (each a new list, so
  each is a log entry), in segments alternating with raw PySyncObj writes of the same clients.

Floors, in the same run, with as many watchers of their own: ``bench.floor`` processes (the
master's own raw ASGI watch handler on the same uvicorn set-up) answering the real watch answers
of each change, pre-encoded; rounds alternate between the floors and the master.
"""

from __future__ import annotations

import json
import sys
from ipaddress import IPv4Network
from pathlib import Path
from typing import Any

import httpx

from bench import floor, loadgen, processes, stats
from bench.clusters import TWO_OVERLAYS, OverlayCluster, RawCluster, agent_ip
from bench.context import Context
from bench.report import Row
from bench.throughput import CLIENTS, segment, summary

NETWORK_TARGET = 1.0  # issue 11: network added to every agent's kernel, p99 under 1 s
PAGE_TARGET = 0.5  # issue 12: the page shows a container within 1 s; agents read every 0.5 s
PASS_TARGET = 1.0  # issue 4: an agent's kernel matches within a second of a change
REPORT_TARGET = 0.5  # reports are writes like registrations: at least half of raw


def network(k: int) -> dict[str, Any]:
    return {"name": f"live{k}", "subnet": f"172.{16 + k}.0.0/16", "prefix": 26}


def report(address: str, tag: str) -> dict[str, Any]:
    container = {"id": f"bench-{tag}", "network": "dcos", "half": "mesos", "address": address}
    return {"containers": [container]}


class Live:
    """The live cluster and what the rounds need from it."""

    def __init__(self, ctx: Context) -> None:
        self.dir = ctx.workdir / "live"
        self.cluster = OverlayCluster(self.dir, config_text=TWO_OVERLAYS)
        self.agents = ctx.sizes.live_agents

    def start(self) -> None:
        self.cluster.start_all()
        spec = {"clients": CLIENTS, "count": self.agents, "kind": "http", "first_agent": 0}
        spec |= {"targets": [r.http for r in self.cluster.replicas], "token": self.cluster.token}
        filled = loadgen.launch("throughput", spec, 300)
        if filled["errors"]:
            raise AssertionError(f"registrations failed: {filled['first_errors']}")

    def url(self, path: str) -> str:
        return f"{self.cluster.leader().url}{path}"

    def save(self, name: str, path: str) -> Path:
        file = self.dir / name
        file.write_bytes(httpx.get(self.url(path), timeout=30).content)
        return file

    def write(self, method: str, path: str, doc: dict[str, Any] | None = None) -> int:
        answer = httpx.request(
            method, self.url(path), json=doc, headers=self.cluster.auth, timeout=30
        )
        answer.raise_for_status()
        return int(answer.headers["x-overlay-revision"])

    def halves(self) -> dict[str, str]:
        """Each agent's first container address in its Mesos half of ``dcos``."""
        state = httpx.get(self.url("/overlay-master/state"), timeout=30).json()
        found = {}
        for record in state["agents"]:
            for overlay in record["overlays"]:
                if overlay["info"]["name"] == "dcos" and "mesos_bridge" in overlay:
                    half = IPv4Network(overlay["mesos_bridge"]["ip"])
                    found[record["ip"]] = str(half.network_address + 2)
        return found

    def system(self, watchers: int, pages: int = 0) -> dict[str, Any]:
        return {
            "name": "master",
            "watchers": watchers,
            "pages": pages,
            "targets": [r.http for r in self.cluster.replicas],
            "pids": self.cluster.pids(),
            "token": self.cluster.token,
            "control": self.cluster.leader().http,
        }


def floors_system(floors: list[tuple[str, Any]], watchers: int, pages: int = 0) -> dict[str, Any]:
    return {
        "name": "floor",
        "floor": True,
        "watchers": watchers,
        "pages": pages,
        "targets": [address for address, _ in floors],
        "pids": [proc.pid for _, proc in floors],
        "control": floors[0][0],
    }


def interleaved(live: Live, floors: list[tuple[str, Any]], pages: int, rounds: list[Any]) -> Any:
    spec = {
        "systems": [
            floors_system(floors, live.agents, pages),
            live.system(live.agents, pages),
        ],
        "rounds": rounds,
    }
    result = loadgen.launch("watch", spec, timeout=600)
    for name, system in result.items():
        if system["error_count"]:
            raise AssertionError(f"{system['error_count']} {name} watchers: {system['errors']}")
    return result


def run(ctx: Context) -> list[Row]:
    live = Live(ctx)
    raw = RawCluster(ctx.workdir / "live-raw")
    started: list[Any] = []
    try:
        live.start()
        raw.start_all()
        rows = changes(ctx, live, started)
        rows.append(report_rate(ctx, live, raw))
    finally:
        for _, proc in started:
            processes.stop(proc)
        raw.stop_all()
        live.cluster.stop_all()
    return rows


def changes(ctx: Context, live: Live, started: list[Any]) -> list[Row]:
    sizes = ctx.sizes
    state = live.save("state-before.json", "/overlay-master/state")
    revision = live.write("POST", "/overlay-master/networks", network(0))
    added = live.save("network-delta.json", f"/overlay-master/watch?since={revision - 1}&timeout=0")
    agent, address = next(iter(live.halves().items()))
    revision = live.write("PUT", f"/overlay-master/agents/{agent}/containers", report(address, "0"))
    watch = f"/overlay-master/watch?since={revision - 1}&timeout=0"
    empty = live.save("report-delta.json", watch)
    page = live.save("report-page-delta.json", watch + "&include=containers")

    floors = [floor.launch(state, added) for _ in range(3)]
    started += floors
    plans = [
        {"kind": "network", "delete": f"live{k}", "add": network(k + 1)}
        for k in range(sizes.live_rounds)
    ]
    by_network = interleaved(live, floors, 0, plans)
    for _, proc in floors:
        processes.stop(proc)

    floors = [floor.launch(state, empty, page) for _ in range(3)]
    started += floors
    plans = [
        {
            "kind": "containers",
            "agent": agent,
            "settle": report(address, f"{k}a"),
            "report": report(address, f"{k}b"),
            "measure": "pages",
        }
        for k in range(sizes.live_rounds)
    ]
    by_report = interleaved(live, floors, sizes.page_watchers, plans)

    passes = agent_pass(state, added, agent_ip(2), sizes.network_pass_runs)
    return [
        *network_rows(live.agents, by_network, passes),
        page_row(live.agents, sizes.page_watchers, by_report),
    ]


def agent_pass(state: Path, delta: Path, ip: str, runs: int) -> list[dict[str, Any]]:
    """``bench.network_pass`` in a fresh interpreter (see its docstring)."""
    spec = json.dumps({"state": str(state), "delta": str(delta), "ip": ip, "runs": runs})
    out = processes.output([sys.executable, "-m", "bench.network_pass", spec], 300, "network_pass")
    runs_done: list[dict[str, Any]] = json.loads(out)["runs"]
    return runs_done


def p99s(result: dict[str, Any]) -> list[float]:
    return [stats.percentile(r["latencies"], 99) for r in result["rounds"]]


def network_rows(agents: int, result: dict[str, Any], passes: list[dict[str, Any]]) -> list[Row]:
    ours, base = p99s(result["master"]), p99s(result["floor"])
    times = [p["seconds"] for p in passes]
    composed = stats.median(ours) + stats.median(times)
    ack = stats.median([r["ack"] for r in result["master"]["rounds"]])
    return [
        Row(
            "live.network",
            f"network added to every agent's kernel, {agents:,} agents (composed p99)",
            f"{stats.seconds(composed)} = master to every watcher p99 "
            f"{stats.seconds(stats.median(ours))} + one agent's pass "
            f"{stats.seconds(stats.median(times))}",
            f"raw ASGI long poll, the same answer pre-encoded: p99 "
            f"{stats.spread(base, what='rounds')}",
            f"{stats.median(ours) / stats.median(base):.2f}x p99 (watch part)",
            f"p99 < {NETWORK_TARGET:g} s",
            composed < NETWORK_TARGET,
            notes=f"Master to watchers, p99 per round: {stats.spread(ours, what='rounds')} "
            f"(the POST's acknowledgement: median {stats.seconds(ack)}; the answer carries every "
            "agent's record, each holding a new block). The agent's pass is the next row. "
            "Composed as a sum: an agent's pass starts once its watch answer has arrived.",
        ),
        Row(
            "live.network_pass",
            f"one agent's pass for a network added ({agents - 1:,} peers): watch answer to "
            "kernel, firewall and CNI config",
            f"{stats.spread(times)}, {passes[0]['writes']} writes",
            target=f"under {PASS_TARGET:g} s",
            met=stats.median(times) < PASS_TARGET,
            notes="A real agent in a namespace, after programming the state before the change: "
            "parse the very watch answer that added the network, apply it, reconcile (2 "
            f"bridges, {passes[0]['routes']} routes, firewall sets, CNI configuration list).",
        ),
    ]


def page_row(agents: int, pages: int, result: dict[str, Any]) -> Row:
    ours, base = p99s(result["master"]), p99s(result["floor"])
    ack = stats.median([r["ack"] for r in result["master"]["rounds"]])
    return Row(
        "live.container_page",
        f"container reported to visible on the page, {agents:,} agents watching, {pages} pages "
        "(p99 per round)",
        stats.spread(ours, what="rounds"),
        f"raw ASGI long poll, the same answers pre-encoded: {stats.spread(base, what='rounds')}",
        f"{stats.median(ours) / stats.median(base):.2f}x p99",
        f"p99 < {PAGE_TARGET:g} s",
        stats.median(ours) < PAGE_TARGET,
        notes="From just before one agent's PUT .../containers until every page-style watcher "
        "(GET /overlay-master/watch?include=containers) holds the new revision; the agent "
        f"watchers are woken too. The PUT's acknowledgement: median {stats.seconds(ack)}. "
        "Target: the page shows a container within a second of its start (issue 12), and an "
        "agent reads its containers every 0.5 s, which leaves 0.5 s to the masters.",
    )


def report_rate(ctx: Context, live: Live, raw: RawCluster) -> Row:
    halves = live.halves()
    reports = [[ip, address] for ip, address in halves.items()]
    count = ctx.sizes.report_writes
    ours, base = [], []
    for k in range(ctx.sizes.report_segments):
        spec: dict[str, Any] = {"clients": CLIENTS, "count": count}
        raw_spec = {**spec, "kind": "raw", "targets": [r.control for r in raw.replicas]}
        http = {"kind": "report", "reports": reports, "token": live.cluster.token}
        ours_spec = {**spec, **http, "targets": [r.http for r in live.cluster.replicas]}
        raw_pids = [r.proc.pid for r in raw.replicas if r.proc]
        pair = [(base, raw_spec, raw_pids), (ours, ours_spec, live.cluster.pids())]
        for runs, one, pids in pair if k % 2 == 0 else pair[::-1]:
            runs.append(segment(one, pids))
    errors = sum(int(s["errors"]) for s in ours)
    if errors:
        raise AssertionError(f"{errors} container reports failed: {ours[0]['first_errors']}")
    ratio = stats.median([s["rate"] for s in ours]) / stats.median([s["rate"] for s in base])
    cpu = [stats.median([s["server_cpu_per_write"] for s in runs]) for runs in (ours, base)]
    return Row(
        "live.reports",
        f"container reports the masters take: {CLIENTS} clients, {live.agents:,} agents, "
        f"{count:,} reports per segment",
        summary(ours),
        f"raw PySyncObj: {summary(base)}",
        f"{ratio:.2f}x",
        f"at least {REPORT_TARGET}x raw",
        ratio >= REPORT_TARGET,
        notes="Each report is a new list for one agent (a container whose ID changes), so each "
        "is a log entry; segments alternate with raw PySyncObj counter increments. CPU time of "
        f"the three servers per write: masters {stats.seconds(cpu[0])}, raw "
        f"{stats.seconds(cpu[1])} ({cpu[0] / cpu[1]:.1f}x). Per-request latency p50/p99: "
        + ", ".join(f"{stats.seconds(s['p50'])}/{stats.seconds(s['p99'])}" for s in ours)
        + ".",
    )
