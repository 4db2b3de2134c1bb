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
        f"agents      {_cell(doc.get('agents', []))}",
    ]
    return "\n".join(lines)


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


def deleted_network(doc: dict[str, Any]) -> str:
    freed = f"; its blocks freed on {len(doc['agents'])} agent(s)" if doc["agents"] else ""
    return f"deleted network {doc['name']} (revision {doc['revision']}){freed}"


def deleted_agents(doc: dict[str, Any]) -> str:
    return f"deleted; {len(doc['agents'])} agent(s) remain"
