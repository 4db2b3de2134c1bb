"""``overlay-master``: argv/env -> settings -> node -> uvicorn, plus the offline tools.

overlay-master check-config FILE            validate a config; exit 2 listing every problem
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

from overlay_master import allocator, dcos_json
from overlay_master.config import default_network, load_network
from overlay_master.errors import ConfigError, OverlayError
from overlay_master.network import NetworkConfig, capacity_summary, to_plain

EXIT_INVALID = 2


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
        prog="overlay-master check-config", description="Validate a network config file."
    )
    parser.add_argument("file", help="YAML network config, or a DC/OS config.yaml")
    args = parser.parse_args(argv)
    try:
        net = load_network(args.file)
    except ConfigError as e:
        print(str(e), file=sys.stderr)
        return EXIT_INVALID
    print(f"{args.file}: valid")
    for line in capacity_summary(net):
        print(f"  {line}")
    return 0


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
