"""Docker networks for the ``d-<name>`` bridges: DC/OS's "Docker step" (docs/dcos-overlay.md,
"The agent's work").

For every local overlay with a Docker bridge the agent keeps a Docker network named after the
overlay: bridge driver, ``com.docker.network.bridge.name=d-<name>``, masquerade off (egress NAT
is ours, see firewall.py), the overlay MTU and ``subnet`` = the upper half of the agent block;
with an IPv6 block also ``--ipv6`` and the upper half of that block (dual stack, as DC/OS's
``dcos6``). This
module is the PURE part (``specs``, ``parse``, ``diff``, ``hand_over``); the thin I/O part
(``Docker``: the Engine API over its unix socket with httpx; no docker CLI involved) is
docker_engine.py.

Design notes
- Who owns the bridge ``d-<name>``: Docker creates it (gateway = first host of the upper half,
  the same address the agent wants), and the agent *adopts* it the way it adopts any untagged
  ``m-``/``d-`` bridge: it tags it with its ifalias and sets the overlay MTU (Docker 20.10
  leaves a bridge it creates at 1500). Every attribute the two write agrees, so they never undo
  each other's work. If the agent made the bridge first (Docker unreachable at that pass, or
  Docker support switched on later), Docker adopts it in turn: it keeps the MTU, the tag and the
  matching gateway, and on network removal it leaves a bridge it did not create (verified on
  dockerd 20.10), which the agent then deletes as any stale bridge of its own.
- Order within a pass: the Docker step runs BEFORE the kernel step. Removals first: Docker
  deletes a bridge it created together with its network, so the kernel step never deletes a
  bridge under a network Docker still has. Then creations: if Docker changed anything, the
  reconciler observes the kernel again, so the kernel plan sees Docker's new bridge and adopts it
  instead of trying to create it a second time.
- The kernel step never deletes a bridge a Docker network still uses (``DesiredNet.held``), even
  when the overlay is gone: Docker refuses to remove a network with containers attached, and
  ripping the bridge out from under them would cut them off. While Docker is unreachable every
  ``d-`` bridge is held, since which ones Docker uses is unknown.
- Idempotent: a network with the right driver, bridge name, masquerade, MTU and subnet is left
  alone; a pass with nothing to change makes no write (only one ``GET /networks``).
- Stale: a network of ours (label ``overlay.agent=1``) whose subnet or options differ is removed
  and created again. DC/OS kept a stale one forever (a bug). A network of the same name without
  our label is someone else's: it is never changed or removed; if it differs, the overlay is
  ``STATUS_FAILED`` with the reason.
- Removal: when an overlay goes away for this agent, only networks carrying our label go.
- Errors become the overlay's ``STATUS_FAILED`` with ``Unable to configure docker network: ...``
  (DC/OS's wording). A failed removal of a network no overlay wants is logged and retried on
  every pass.
- Namespaces: Docker creates the bridge in the namespace dockerd runs in. A network created in
  a pass whose bridge then is not in the agent's namespace is reported (dockerd runs elsewhere).
- Docker's inter-network isolation chains (DC/OS inserted ``-j RETURN`` into DOCKER-ISOLATION)
  are not touched: this agent's egress NAT lives in nftables, and a dockerd started with
  ``--iptables=false`` (as everywhere in this project) has no such chains.
- IPv6: Docker gives the bridge the same gateway the agent wants (first host of the half) and
  its own ``fe80::1``, which is link-local and so not the agent's business. An IPv6-only overlay
  still gets an IPv4 pool from Docker's defaults (Docker always allocates one); its IPv4 subnet is
  then not compared.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from ipaddress import IPv4Network, IPv6Network, ip_network
from typing import Any

from overlay_agent.desired import DesiredNet, LocalOverlay
from overlay_agent.observed import ObservedNet
from overlay_wire.contract import DOCKER_BRIDGE_PREFIX

LABEL = "overlay.agent"
LABEL_VALUE = "1"
BRIDGE_NAME = "com.docker.network.bridge.name"
MASQUERADE = "com.docker.network.bridge.enable_ip_masquerade"
MTU = "com.docker.network.driver.mtu"
DEFAULT_SOCKET = "/var/run/docker.sock"
TIMEOUT = 30.0  # creating or removing a network (DC/OS: command_timeout)
LIST_TIMEOUT = 5.0  # the every-pass read: a hung daemon must not hold up the kernel step long
FAILED = "Unable to configure docker network"


# -- pure ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class NetworkSpec:
    """The Docker network one overlay wants."""

    name: str  # the overlay's name, as in DC/OS
    bridge: str  # d-<name>
    subnet: IPv4Network | None  # the upper half of the agent block
    mtu: int
    subnet6: IPv6Network | None = None  # the upper half of the agent's IPv6 block

    @property
    def subnets(self) -> list[IPv4Network | IPv6Network]:
        return [n for n in (self.subnet, self.subnet6) if n is not None]

    def options(self) -> dict[str, str]:
        return {BRIDGE_NAME: self.bridge, MASQUERADE: "false", MTU: str(self.mtu)}

    def request(self) -> dict[str, Any]:
        """The body of ``POST /networks/create``."""
        return {
            "Name": self.name,
            "Driver": "bridge",
            "CheckDuplicate": True,
            "EnableIPv6": self.subnet6 is not None,
            "IPAM": {"Driver": "default", "Config": [{"Subnet": str(n)} for n in self.subnets]},
            "Options": self.options(),
            "Labels": {LABEL: LABEL_VALUE},
        }

    def describe(self) -> str:
        subnets = ", ".join(map(str, self.subnets))
        return f"network {self.name} (bridge {self.bridge}, subnet {subnets}, MTU {self.mtu})"


@dataclass(frozen=True)
class DockerNetwork:
    """A network as ``GET /networks`` reports it (only what we compare)."""

    id: str
    name: str
    driver: str
    subnets: frozenset[str]
    options: Mapping[str, str] = field(hash=False)
    owned: bool  # carries our label
    ipv6: bool = False  # EnableIPv6

    @property
    def bridge(self) -> str | None:
        return self.options.get(BRIDGE_NAME)


@dataclass(frozen=True)
class DockerPlan:
    remove: tuple[DockerNetwork, ...]  # ours and unwanted, or ours and stale (then re-created)
    create: tuple[NetworkSpec, ...]
    refused: Mapping[str, str]  # overlay -> why the network of that name is left alone

    def __bool__(self) -> bool:
        return bool(self.remove or self.create)


@dataclass(frozen=True)
class DockerOutcome:
    """What the Docker step did, for the reconciler."""

    errors: Mapping[str, str]  # overlay -> problem
    bridges: frozenset[str] | None  # bridges Docker networks use now; None: Docker unreachable
    created: frozenset[str] = frozenset()  # bridges of networks created in this pass
    changed: bool = False


def specs(overlays: Iterable[LocalOverlay]) -> list[NetworkSpec]:
    """One network per overlay with a Docker bridge."""
    return [
        NetworkSpec(o.name, b.name, b.subnet, b.mtu, b.subnet6)
        for o in overlays
        for b in [o.docker_bridge]
        if b is not None
    ]


def parse(raw: Mapping[str, Any]) -> DockerNetwork:
    """One entry of ``GET /networks``; raises ``ValueError`` if it is not shaped like one."""
    ipam = raw.get("IPAM") or {}
    configs = ipam.get("Config") or []
    options = raw.get("Options") or {}
    labels = raw.get("Labels") or {}
    if not isinstance(options, Mapping) or not isinstance(labels, Mapping):
        raise ValueError(f"network {raw.get('Name')!r}: Options/Labels are not objects")
    return DockerNetwork(
        id=str(raw["Id"]),
        name=str(raw["Name"]),
        driver=str(raw.get("Driver", "")),
        subnets=frozenset(str(c["Subnet"]) for c in configs if c.get("Subnet")),
        options={str(k): str(v) for k, v in options.items()},
        owned=labels.get(LABEL) == LABEL_VALUE,
        ipv6=raw.get("EnableIPv6") is True,
    )


def differences(want: NetworkSpec, seen: DockerNetwork) -> list[str]:
    """How ``seen`` differs from ``want``, in words (empty: it is right)."""
    found = []
    if seen.driver != "bridge":
        found.append(f"driver {seen.driver} (want bridge)")
    subnets = {n for n in map(_net, seen.subnets) if n is not None}
    if want.subnet is None:  # Docker's own IPv4 pool of an IPv6-only network: not compared
        subnets = {n for n in subnets if n.version == 6}
    if subnets != set(want.subnets):
        shown = ", ".join(sorted(seen.subnets)) or "none"
        found.append(f"subnet {shown} (want {', '.join(map(str, want.subnets))})")
    if seen.ipv6 != (want.subnet6 is not None):
        found.append(f"EnableIPv6 {seen.ipv6} (want {want.subnet6 is not None})")
    for key, value in want.options().items():
        if _normal(key, seen.options.get(key)) != _normal(key, value):
            found.append(f"{key}={seen.options.get(key)} (want {value})")
    return found


def diff(want: Sequence[NetworkSpec], seen: Sequence[DockerNetwork]) -> DockerPlan:
    """What to remove and create so that Docker holds exactly ``want`` (of what is ours)."""
    by_name = {n.name: n for n in seen}
    wanted = {s.name for s in want}
    remove = [n for n in seen if n.owned and n.name not in wanted]
    create: list[NetworkSpec] = []
    refused: dict[str, str] = {}
    for spec in want:
        net = by_name.get(spec.name)
        problems = differences(spec, net) if net is not None else []
        if net is None:
            create.append(spec)
        elif problems and net.owned:
            remove.append(net)
            create.append(spec)
        elif problems:
            refused[spec.name] = (
                f"network {spec.name} exists without label {LABEL}={LABEL_VALUE} and differs: "
                f"{'; '.join(problems)}; remove it to let the agent create its own"
            )
    return DockerPlan(tuple(remove), tuple(create), refused)


def hand_over(
    want: DesiredNet, seen: ObservedNet, outcome: DockerOutcome
) -> tuple[DesiredNet, dict[str, str]]:
    """The kernel's share of ``want`` once Docker has done its part, and bridge problems.

    Bridges Docker networks still use are held (never deleted by the kernel step); while Docker
    is unreachable every ``d-`` bridge is. A bridge Docker just created that is not in the
    observed namespace means dockerd runs in another network namespace.
    """
    if outcome.bridges is not None:
        held = outcome.bridges
    else:
        held = frozenset(b.name for b in seen.bridges if b.name.startswith(DOCKER_BRIDGE_PREFIX))
    problems = {}
    for overlay in want.overlays:
        bridge = overlay.docker_bridge
        if (
            bridge is not None
            and bridge.name in outcome.created
            and seen.bridge(bridge.name) is None
        ):
            problems[overlay.name] = (
                f"Docker created network {overlay.name} but bridge {bridge.name} is not in this "
                "agent's network namespace: is dockerd running in another one?"
            )
    return replace(want, held=want.held | held), problems


def _net(text: str) -> IPv4Network | IPv6Network | None:
    try:
        return ip_network(text, strict=False)
    except ValueError:
        return None


def _normal(key: str, value: str | None) -> str | None:
    """Docker keeps option values as given: compare booleans case-blind, MTUs as numbers."""
    if value is None:
        return None
    if key == MASQUERADE:
        return value.strip().lower()
    if key == MTU:
        return str(int(value)) if value.strip().isdigit() else value
    return value


# -- I/O -------------------------------------------------------------------------------------
