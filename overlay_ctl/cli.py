"""``overlayctl``: the operator's command line, talking HTTP to any master (docs/api.md).

overlayctl [--masters URL,...] [--token-file F] [--json] [--timeout S] COMMAND
  network list | show NAME | add NAME --subnet CIDR --prefix N [--subnet6 CIDR --prefix6 N]
          [--allow-from A,B] [--disabled] | enable NAME | disable NAME
          | allow NAME --from A,B | delete NAME [--force]
  agent list | show IP | delete IP [IP ...]
  containers [--network NAME] [--agent IP]
  status                     the cluster's health in one screen

The masters and the token come from the flags, else ``OVERLAY_MASTERS`` and ``OVERLAY_TOKEN`` /
``OVERLAY_TOKEN_FILE``, else the local dev cluster (``scripts/run``: ports 8101-8103 and its
``dev-cluster-data/api-token``). Requests are retried like an agent's (next master, jittered
backoff, ``Retry-After``) until ``--timeout``; a refusal (4xx) is printed with its reason and
ends the command with status 1; no answer in time ends it with status 3.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import httpx

from overlay_agent.client import MasterClient
from overlay_agent.errors import MasterError, Rejected, Unauthorized
from overlay_ctl import tables
from overlay_wire import contract

DEV_MASTERS = "http://127.0.0.1:8101,http://127.0.0.1:8102,http://127.0.0.1:8103"
DEV_TOKEN = Path("dev-cluster-data/api-token")
EXIT_REFUSED, EXIT_USAGE, EXIT_UNREACHABLE = 1, 2, 3

Request = tuple[str, str, dict[str, Any]]  # method, path, httpx keyword arguments


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="overlayctl", description=__doc__.split("\n\n")[0])
    p.add_argument("--masters", default=os.environ.get("OVERLAY_MASTERS", DEV_MASTERS))
    p.add_argument("--token-file", default=os.environ.get("OVERLAY_TOKEN_FILE"))
    p.add_argument("--json", action="store_true", help="print the API's JSON answer")
    p.add_argument("--timeout", type=float, default=30.0, help="give up after this many seconds")
    kinds = p.add_subparsers(dest="kind", required=True)
    net = kinds.add_parser("network", help="virtual networks").add_subparsers(
        dest="action", required=True
    )
    net.add_parser("list", help="every network with its capacity")
    for action in ("show", "enable", "disable"):
        net.add_parser(action).add_argument("name")
    add = net.add_parser("add", help="a new network; every registered agent gets a block")
    add.add_argument("name")
    add.add_argument("--subnet", help="IPv4 space, e.g. 10.10.0.0/16")
    add.add_argument("--prefix", type=int, help="each agent's IPv4 block, e.g. 24")
    add.add_argument("--subnet6", help="IPv6 space, e.g. fd01:c::/64")
    add.add_argument("--prefix6", type=int, help="each agent's IPv6 block, e.g. 80")
    add.add_argument("--allow-from", default="", help="networks that may reach this one: A,B")
    add.add_argument("--disabled", action="store_true", help="add it without allocating")
    allow = net.add_parser("allow", help="set which networks may reach this one")
    allow.add_argument("name")
    allow.add_argument("--from", dest="sources", required=True, help="A,B (empty: none)")
    delete = net.add_parser("delete", help="delete a network (refused while in use)")
    delete.add_argument("name")
    delete.add_argument("--force", action="store_true", help="take its blocks from the agents")
    agent = kinds.add_parser("agent", help="registered agents").add_subparsers(
        dest="action", required=True
    )
    agent.add_parser("list", help="every agent with its VTEP and blocks")
    agent.add_parser("show").add_argument("ip")
    agent.add_parser("delete", help="free the agents' VTEPs and blocks").add_argument(
        "ips", nargs="+"
    )
    containers = kinds.add_parser("containers", help="containers the agents report")
    containers.add_argument("--network", help="only on this network")
    containers.add_argument("--agent", help="only on this agent (its IP)")
    kinds.add_parser("status", help="replicas, leader, networks and agents in one screen")
    return p


def request_for(args: argparse.Namespace) -> tuple[Request, Callable[[Any], str]]:
    """The API request a command makes, and how its answer is shown to people."""
    if args.kind == "containers":
        params = {k: v for k, v in (("network", args.network), ("agent", args.agent)) if v}
        return ("GET", contract.CONTAINERS_PATH, {"params": params}), tables.containers
    if args.kind == "network":
        path = f"{contract.NETWORKS_PATH}/{getattr(args, 'name', '')}"
        match args.action:
            case "list":
                return ("GET", contract.NETWORKS_PATH, {}), tables.networks
            case "show":
                return ("GET", path, {}), tables.network
            case "add":
                body = _new_network(args)
                return ("POST", contract.NETWORKS_PATH, {"json": body}), tables.network
            case "enable" | "disable":
                body = {"enabled": args.action == "enable"}
                return ("PATCH", path, {"json": body}), tables.network
            case "allow":
                body = {"allow_from": _names(args.sources)}
                return ("PATCH", path, {"json": body}), tables.network
            case _:
                params = {"force": str(args.force).lower()}
                return ("DELETE", path, {"params": params}), tables.deleted_network
    match args.action:
        case "list":
            return ("GET", contract.STATE_PATH, {}), tables.agents
        case "show":
            return ("GET", contract.agent_path(args.ip), {}), tables.agent
        case _:
            body = {"agents": args.ips}
            return ("POST", contract.DELETE_AGENTS_PATH, {"json": body}), tables.deleted_agents


def _new_network(args: argparse.Namespace) -> dict[str, Any]:
    body: dict[str, Any] = {"name": args.name}
    for key in ("subnet", "prefix", "subnet6", "prefix6"):
        if getattr(args, key) is not None:
            body[key] = getattr(args, key)
    if args.allow_from:
        body["allow_from"] = _names(args.allow_from)
    if args.disabled:
        body["enabled"] = False
    return body


def _names(text: str) -> list[str]:
    return [n.strip() for n in text.split(",") if n.strip()]


def token(flag: str | None) -> str | None:
    """The bearer token: ``--token-file``, ``OVERLAY_TOKEN``, or the dev cluster's file."""
    if flag:
        return Path(flag).read_text().strip()
    if os.environ.get("OVERLAY_TOKEN"):
        return os.environ["OVERLAY_TOKEN"]
    return DEV_TOKEN.read_text().strip() if DEV_TOKEN.is_file() else None


async def run(
    args: argparse.Namespace,
    out: Callable[[str], None],
    transport: httpx.AsyncBaseTransport | None = None,
) -> int:
    masters = [u.strip() for u in args.masters.split(",") if u.strip()]
    client = MasterClient(masters, token(args.token_file), transport=transport)
    try:
        doc, show = await _ask(client, args)
    except (Rejected, Unauthorized) as e:
        print(f"overlayctl: {e}", file=sys.stderr)
        return EXIT_REFUSED
    except MasterError as e:
        print(f"overlayctl: {e}", file=sys.stderr)
        return EXIT_UNREACHABLE
    finally:
        await client.aclose()
    out(json.dumps(doc, indent=2, sort_keys=True) if args.json else show(doc))
    return 0


async def _ask(client: MasterClient, args: argparse.Namespace) -> tuple[Any, Callable[[Any], str]]:
    """The answer(s) a command needs, and how to show them."""
    if args.kind == "status":  # three reads; the cluster view answers even without a quorum
        cluster = await client.request("GET", contract.CLUSTER_PATH, give_up_after=args.timeout)
        networks = await client.request("GET", contract.NETWORKS_PATH, give_up_after=args.timeout)
        state = await client.request("GET", contract.STATE_PATH, give_up_after=args.timeout)
        return {"cluster": cluster, "networks": networks, "state": state}, tables.status
    (method, path, kwargs), show = request_for(args)
    return await client.request(method, path, give_up_after=args.timeout, **kwargs), show


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return asyncio.run(run(args, print))
    except OSError as e:  # an unreadable token file
        print(f"overlayctl: {e}", file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":
    raise SystemExit(main())
