"""Plain-text tables of the masters' answers, for people (``--json`` prints the answers)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """Left-aligned columns, two spaces apart; an empty table says so."""
    if not rows:
        return "  ".join(header) + "\n(none)"
    text = [[str(c) for c in header], *[[_cell(c) for c in row] for row in rows]]
    widths = [max(len(r[i]) for r in text) for i in range(len(header))]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in text
    )


def _cell(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list | tuple):
        return ",".join(str(v) for v in value) or "-"
    return str(value)


def _spaces(net: dict[str, Any]) -> str:
    parts = [
        f"{net[s]} /{net[p]}"
        for s, p in (("subnet", "prefix"), ("subnet6", "prefix6"))
        if net.get(s)
    ]
    return ", ".join(parts)


def _use(capacity: dict[str, Any], key: str) -> str:
    blocks = capacity.get(key)
    return f"{blocks['used']}/{blocks['total']}" if blocks else "-"


def networks(doc: dict[str, Any]) -> str:
    rows = [
        (
            n["name"],
            _spaces(n),
            n["enabled"],
            n.get("allow_from", []),
            len(n.get("agents", [])),
            _use(n.get("capacity", {}), "blocks"),
        )
        for n in doc["networks"]
    ]
    return table(
        ("NAME", "ADDRESSES (/BLOCK)", "ENABLED", "ALLOW FROM", "AGENTS", "BLOCKS USED"), rows
    )


def network(doc: dict[str, Any]) -> str:
    capacity = doc.get("capacity", {})
    lines = [
        f"network     {doc['name']}",
        f"addresses   {_spaces(doc)}",
        f"enabled     {_cell(doc['enabled'])}",
        f"allow from  {_cell(doc.get('allow_from', []))}",
        f"blocks      {_use(capacity, 'blocks')} used (IPv4), {_use(capacity, 'blocks6')} used (IPv6)",
        f"containers  {doc.get('containers', 0)}",
    ]
    rows = [
        (
            a["ip"],
            a.get("subnet") or a.get("subnet6"),
            _use(a, "mesos"),
            _use(a, "docker"),
            a["containers"],
            a.get("status"),
            a.get("error"),
        )
        for a in doc.get("agents", [])
    ]
    header = ("AGENT", "BLOCK", "MESOS USED", "DOCKER USED", "CONTAINERS", "STATUS", "ERROR")
    return "\n".join(lines) + "\n\n" + table(header, rows)


def agents(doc: dict[str, Any]) -> str:
    rows = []
    for agent in doc["agents"]:
        overlays = agent.get("overlays", [])
        vxlan = overlays[0]["backend"]["vxlan"] if overlays else {}
        blocks = [f"{o['info']['name']}={o.get('subnet') or o.get('subnet6')}" for o in overlays]
        states = {o.get("state", {}).get("status", "-") for o in overlays}
        rows.append(
            (agent["ip"], vxlan.get("vtep_ip"), vxlan.get("vtep_mac"), blocks, sorted(states))
        )
    return table(("AGENT", "VTEP", "MAC", "BLOCKS", "STATUS"), rows)


def agent(doc: dict[str, Any]) -> str:
    rows = []
    for o in doc.get("overlays", []):
        state = o.get("state", {})
        rows.append(
            (
                o["info"]["name"],
                o.get("subnet") or o.get("subnet6"),
                (o.get("mesos_bridge") or {}).get("ip"),
                (o.get("docker_bridge") or {}).get("ip"),
                state.get("status"),
                state.get("error"),
            )
        )
    for skipped in doc.get("skipped_overlays", []):
        rows.append((skipped["name"], None, None, None, "SKIPPED", skipped["error"]))
    header = f"agent {doc['ip']}\n"
    return header + table(
        ("NETWORK", "BLOCK", "MESOS HALF", "DOCKER HALF", "STATUS", "ERROR"), rows
    )


def containers(doc: dict[str, Any]) -> str:
    rows = [
        (
            c["id"][:12],
            c.get("name"),
            c["network"],
            c["agent"],
            c["half"],
            c.get("address"),
            c.get("address6"),
        )
        for c in doc["containers"]
    ]
    return table(("CONTAINER", "NAME", "NETWORK", "AGENT", "HALF", "ADDRESS", "ADDRESS6"), rows)


NEARLY_FULL = 0.9  # a bridge half this used gets a warning


def status(doc: dict[str, Any]) -> str:
    """The cluster in one screen: replicas, networks with warnings, agents by status."""
    cluster, networks, state = doc["cluster"], doc["networks"], doc["state"]
    replicas = [
        (
            r["raft"],
            r.get("http"),
            r.get("role") if r["reachable"] else "unreachable",
            r.get("ready"),
            r.get("reason"),
        )
        for r in cluster["replicas"]
    ]
    lines = [
        f"leader {cluster.get('leader', '(none)')}, revision {cluster['revision']}",
        table(("REPLICA", "HTTP", "ROLE", "READY", "REASON"), replicas),
        "",
        networks_summary(networks),
    ]
    warnings = nearly_full(networks)
    lines += [f"warning: {w}" for w in warnings]
    counts: dict[str, int] = {}
    for agent in state["agents"]:
        for overlay in agent.get("overlays", []):
            status = overlay.get("state", {}).get("status", "no report yet")
            counts[status] = counts.get(status, 0) + 1
    summary = ", ".join(f"{n} {s}" for s, n in sorted(counts.items())) or "no overlays yet"
    lines.append(f"\n{len(state['agents'])} agent(s); overlays: {summary}")
    return "\n".join(lines)


def networks_summary(doc: dict[str, Any]) -> str:
    rows = [
        (
            n["name"],
            _spaces(n),
            n["enabled"],
            len(n.get("agents", [])),
            n.get("containers", 0),
            _use(n.get("capacity", {}), "mesos"),
            _use(n.get("capacity", {}), "docker"),
        )
        for n in doc["networks"]
    ]
    header = (
        "NETWORK",
        "ADDRESSES (/BLOCK)",
        "ENABLED",
        "AGENTS",
        "CONTAINERS",
        "MESOS USED",
        "DOCKER USED",
    )
    return table(header, rows)


def nearly_full(doc: dict[str, Any]) -> list[str]:
    """Bridge halves at least NEARLY_FULL used: launches there are about to fail."""
    found = []
    for net in doc["networks"]:
        for agent in net.get("agents", []):
            for half in ("mesos", "docker"):
                use = agent.get(half)
                if use and use["total"] and use["used"] >= NEARLY_FULL * use["total"]:
                    found.append(
                        f"{net['name']} on {agent['ip']}: {half} half {use['used']}/{use['total']}"
                        " addresses used"
                    )
    return found


def deleted_network(doc: dict[str, Any]) -> str:
    freed = f"; its blocks freed on {len(doc['agents'])} agent(s)" if doc["agents"] else ""
    return f"deleted network {doc['name']} (revision {doc['revision']}){freed}"


def deleted_agents(doc: dict[str, Any]) -> str:
    return f"deleted; {len(doc['agents'])} agent(s) remain"
