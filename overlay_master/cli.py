"""``overlay-master``: argv/env -> settings -> node -> uvicorn, plus the offline tools.

overlay-master check-config FILE [--against URL]  validate a config (exit 2 listing every
                                             problem); compare with a cluster's log (exit 1)
overlay-master plan [--config FILE] --agents IP,...  [--no-bridges IP,...]
                                             dry run: the state those registrations produce
overlay-master dev-cluster [--data-dir DIR]  three replicas on loopback (the quick start)
overlay-master --config FILE --self H:P --peers H:P,H:P --http H:P --data-dir DIR ...
                                             one replica (see ``serve``)
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from overlay_master import allocator, dcos_json
from overlay_master.config import default_network, load_network
from overlay_master.drift import differences
from overlay_master.errors import ConfigError, OverlayError
from overlay_master.network import NetworkConfig, capacity_summary, to_plain
from overlay_master.validation import parse_network
from overlay_wire.contract import STATE_PATH

EXIT_INVALID = 2
EXIT_DIFFERS = 1


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    commands = {"check-config": check_config_main, "plan": plan_main}
    try:
        if args and args[0] in commands:
            return commands[args[0]](args[1:])
        if args and args[0] == "dev-cluster":
            from overlay_master import devcluster

            return devcluster.main(args[1:])
        from overlay_master import serve

        return serve.main(args)
    except ConfigError as e:
        print(f"overlay-master: {e}", file=sys.stderr)
        return EXIT_INVALID
    except OverlayError as e:
        print(f"overlay-master: {e}", file=sys.stderr)
        return 1


def check_config_main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="overlay-master check-config",
        description="Validate a network config file; with --against, compare it with the "
        "networks a running cluster's log holds (exit 1 if they differ).",
    )
    parser.add_argument("file", help="YAML network config, or a DC/OS config.yaml")
    parser.add_argument("--against", metavar="URL", help="a master, e.g. http://10.0.0.1:8101")
    parser.add_argument("--token-file", help="bearer token (for masters with --protect-reads)")
    args = parser.parse_args(argv)
    try:
        net = load_network(args.file)
    except ConfigError as e:
        print(str(e), file=sys.stderr)
        return EXIT_INVALID
    print(f"{args.file}: valid")
    for line in capacity_summary(net):
        print(f"  {line}")
    if args.against is None:
        return 0
    logged = _logged_network(args.against, args.token_file)
    lines = differences(net, logged)
    if not lines:
        print(f"{args.file} matches the log at {args.against}")
        return 0
    print(f"{args.file} differs from the log at {args.against} (the log's networks apply):")
    for line in lines:
        print(f"  - {line}")
    return EXIT_DIFFERS


def _logged_network(url: str, token_file: str | None) -> NetworkConfig:
    """The network config in a running cluster's log, read from one master's state."""
    import httpx

    headers = {}
    if token_file:
        headers["Authorization"] = "Bearer " + Path(token_file).read_text().strip()
    try:
        answer = httpx.get(url.rstrip("/") + STATE_PATH, headers=headers, timeout=10)
        answer.raise_for_status()
        document = answer.json()
    except (httpx.HTTPError, ValueError) as e:
        raise OverlayError(f"cannot read the state from {url}: {e}") from e
    return parse_network(document.get("network"), source=f"network in the log at {url}")


def plan_main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="overlay-master plan",
        description="Print the /overlay-master/state that registering these agents, in this "
        "order, produces. Nothing is stored anywhere.",
    )
    parser.add_argument("--config", help="network config file (default: the embedded one)")
    parser.add_argument(
        "--agents", required=True, help="agent IPs in registration order, comma-separated"
    )
    parser.add_argument(
        "--no-bridges",
        default="",
        help="IPs that register without bridges (as DC/OS masters do), comma-separated",
    )
    args = parser.parse_args(argv)
    net = load_network(args.config) if args.config else default_network()
    agents = _split(args.agents)
    no_bridges = set(_split(args.no_bridges))
    unknown = sorted(no_bridges - set(agents))
    if unknown:
        print(
            f"overlay-master plan: --no-bridges names IPs not in --agents: {', '.join(unknown)}",
            file=sys.stderr,
        )
        return EXIT_INVALID
    doc, problems = plan(net, agents, no_bridges)
    for problem in problems:
        print(f"overlay-master plan: {problem}", file=sys.stderr)
    print(json.dumps(doc, indent=2, sort_keys=True))
    return EXIT_INVALID if problems else 0


def plan(
    net: NetworkConfig, agents: Sequence[str], no_bridges: set[str]
) -> tuple[dict[str, object], list[str]]:
    """Run the allocator offline; return the DC/OS state and the rejections met on the way."""
    state = allocator.ClusterState()
    state.apply(allocator.configure(to_plain(net)))
    problems: list[str] = []
    for ip in agents:
        bridges = ip not in no_bridges
        result = state.apply(allocator.register(ip, mesos_bridge=bridges, docker_bridge=bridges))
        if isinstance(result, allocator.Rejected):
            problems.append(f"{ip}: {result.reason}: {result.message}")
    assert state.network is not None
    records = [dcos_json.agent_json(r, state.network) for r in state.agents.values()]
    return dcos_json.state_json(records, state.network), problems


def _split(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


if __name__ == "__main__":
    raise SystemExit(main())
