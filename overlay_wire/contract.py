"""The master-to-agent wire contract: the names, numbers and document shapes both sides rely on.

Standard library only, so that the master, the agent, the tests and the benchmarks share one
definition without importing each other. The documents are DC/OS's (docs/dcos-overlay.md): keys
are emitted in alphabetical order and optional keys are left out when unset. The ``TypedDict``
types describe what the master emits; the agent still reads every document defensively (a peer's
record is data from the network, not a promise).
"""

from __future__ import annotations

from enum import StrEnum
from typing import NotRequired, TypedDict

# -- the data plane every agent builds ------------------------------------------------------------

VNI = 1024  # one VXLAN network identifier shared by every overlay (DC/OS hard-codes it)
VTEP_NAME = "vtep1024"
DEFAULT_VXLAN_PORT = 64000  # DC/OS's port, not IANA's 4789
MESOS_BRIDGE_PREFIX = "m-"  # the lower half of an agent's block, for CNI (Mesos UCR) containers
DOCKER_BRIDGE_PREFIX = "d-"  # the upper half, for the Docker network of the same name
BRIDGE_PREFIXES = (MESOS_BRIDGE_PREFIX, DOCKER_BRIDGE_PREFIX)
IFNAME_MAX = 15  # Linux interface names: IFNAMSIZ 16 including the terminating NUL
MAX_OVERLAY_NAME = IFNAME_MAX - len(MESOS_BRIDGE_PREFIX)  # 13, as DC/OS


def mesos_bridge_name(overlay: str) -> str:
    return MESOS_BRIDGE_PREFIX + overlay


def docker_bridge_name(overlay: str) -> str:
    return DOCKER_BRIDGE_PREFIX + overlay


def is_bridge_name(name: str) -> bool:
    """Whether ``name`` has the shape of an overlay bridge (``m-<overlay>`` or ``d-<overlay>``)."""
    return name[:2] in BRIDGE_PREFIXES


class Status(StrEnum):
    """An overlay's state on one agent, as the agent reports it (DC/OS ``OverlayState``)."""

    OK = "STATUS_OK"
    FAILED = "STATUS_FAILED"
    CONFIGURING = "STATUS_CONFIGURING"


STATUSES = tuple(s.value for s in Status)
HALVES = ("mesos", "docker")  # an agent block's bridge halves: lower (CNI), upper (Docker)

# -- HTTP -----------------------------------------------------------------------------------------

STATE_PATH = "/overlay-master/state"
AGENTS_PATH = "/overlay-master/agents"
DELETE_AGENTS_PATH = "/overlay-master/agents/delete"
WATCH_PATH = "/overlay-master/watch"
NETWORKS_PATH = "/overlay-master/networks"
CONTAINERS_PATH = "/overlay-master/containers"
CLUSTER_PATH = "/overlay-master/cluster"
LEADER_PATH = "/overlay-master/leader"
AGENT_OVERLAY_PATH = "/overlay-agent/overlay"
REVISION_HEADER = "X-Overlay-Revision"  # the state revision an answer reflects
JSON = "application/json"
PROMETHEUS_TEXT = "text/plain; version=0.0.4; charset=utf-8"


def agent_path(ip: str) -> str:
    return f"{AGENTS_PATH}/{ip}"


def status_path(ip: str) -> str:
    return f"{AGENTS_PATH}/{ip}/status"


def containers_path(ip: str) -> str:
    return f"{AGENTS_PATH}/{ip}/containers"


# -- documents ------------------------------------------------------------------------------------


class VxlanDoc(TypedDict):
    vni: int
    vtep_ip: str  # "44.128.0.1/20"
    vtep_mac: str  # "70:b3:d5:80:00:01"
    vtep_name: str
    vtep_ip6: NotRequired[str]
    vtep_mtu: NotRequired[int]


class BackendDoc(TypedDict):
    vxlan: VxlanDoc


class OverlayInfoDoc(TypedDict):
    """An overlay's configuration as the agent sees it (DC/OS ``OverlayInfo`` without ``enabled``)."""

    name: str
    subnet: NotRequired[str]
    prefix: NotRequired[int]
    subnet6: NotRequired[str]
    prefix6: NotRequired[int]


class BridgeDoc(TypedDict):
    name: str  # "m-dcos" / "d-dcos"
    ip: NotRequired[str]  # the half block, network address form: "9.0.0.0/27"
    ip6: NotRequired[str]


class StateDoc(TypedDict):
    status: str  # one of STATUSES
    error: NotRequired[str]


class AgentOverlayDoc(TypedDict):
    backend: BackendDoc
    info: OverlayInfoDoc
    subnet: NotRequired[str]  # the agent's block: "9.0.0.0/26"
    subnet6: NotRequired[str]
    mesos_bridge: NotRequired[BridgeDoc]
    docker_bridge: NotRequired[BridgeDoc]
    state: NotRequired[StateDoc]


class SkippedDoc(TypedDict):
    """An overlay the agent holds no block of, and why (our addition to DC/OS's shape)."""

    name: str
    reason: str  # "subnet_exhausted" | "subnet6_exhausted"
    error: str


class AgentDoc(TypedDict):
    ip: str
    overlays: list[AgentOverlayDoc]
    skipped_overlays: NotRequired[list[SkippedDoc]]


class OverlayConfigDoc(TypedDict):
    name: str
    enabled: bool
    subnet: NotRequired[str]
    prefix: NotRequired[int]
    subnet6: NotRequired[str]
    prefix6: NotRequired[int]
    allow_from: NotRequired[list[str]]  # networks that may reach this one; left out when none


class NetworkDoc(TypedDict):
    overlays: list[OverlayConfigDoc]
    vtep_mac_oui: str
    vtep_subnet: str
    vtep_subnet6: NotRequired[str]
    vtep_mtu: NotRequired[int]


class ContainerDoc(TypedDict):
    """A container on an agent's bridge, as its agent reported it."""

    id: str  # the ID its CNI runtime or Docker gave it
    network: str
    half: str  # one of HALVES
    agent: str  # the agent's IP
    address: NotRequired[str]  # IPv4, without prefix
    address6: NotRequired[str]
    name: NotRequired[str]  # Docker's container name
    mac: NotRequired[str]
    interface: NotRequired[str]  # the interface inside the container (CNI)


class ContainerListDoc(TypedDict):
    """``GET /overlay-master/containers``."""

    containers: list[ContainerDoc]
    revision: int


class AgentContainersDoc(TypedDict):
    """One agent's containers in a watch answer (``include=containers``)."""

    agent: str
    containers: list[ContainerDoc]


class ContainersReportedDoc(TypedDict):
    """``PUT /overlay-master/agents/{ip}/containers``."""

    agent: str
    revision: int
    containers: int  # how many the report listed


class BlockUseDoc(TypedDict):
    total: int
    used: int
    free: int


class NetworkCapacityDoc(TypedDict):
    blocks: NotRequired[BlockUseDoc]  # agent blocks of the IPv4 space
    blocks6: NotRequired[BlockUseDoc]
    mesos: NotRequired[BlockUseDoc]  # container addresses of every agent's Mesos half (IPv4)
    docker: NotRequired[BlockUseDoc]  # ... and Docker half


class NetworkAgentDoc(TypedDict):
    """One agent's share of a network: its block, and container addresses per bridge half."""

    ip: str
    subnet: NotRequired[str]
    subnet6: NotRequired[str]
    status: NotRequired[str]  # one of STATUSES, once the agent reported
    error: NotRequired[str]
    mesos: NotRequired[BlockUseDoc]  # IPv4 container addresses of the half; absent: no bridge
    docker: NotRequired[BlockUseDoc]
    containers: int  # reported on this network


class VirtualNetworkDoc(TypedDict):
    """``GET /overlay-master/networks/{name}``: one virtual network as the log holds it."""

    name: str
    enabled: bool
    allow_from: list[str]  # networks whose containers may reach this one's
    subnet: NotRequired[str]
    prefix: NotRequired[int]
    subnet6: NotRequired[str]
    prefix6: NotRequired[int]
    agents: list[NetworkAgentDoc]  # agents holding a block, in registration order
    containers: int  # reported on this network, all agents
    capacity: NetworkCapacityDoc


class NetworkListDoc(TypedDict):
    """``GET /overlay-master/networks``."""

    networks: list[VirtualNetworkDoc]
    revision: int


class NetworkDeletedDoc(TypedDict):
    """``DELETE /overlay-master/networks/{name}``."""

    name: str
    revision: int
    agents: list[str]  # agents whose block of it was freed


class ReplicaDoc(TypedDict):
    """One replica as the answering replica sees it."""

    raft: str
    http: NotRequired[str]  # its API, as it announced it in the log
    self: bool  # the replica that answered
    reachable: bool
    role: NotRequired[str]  # follower | candidate | leader | unknown
    ready: NotRequired[bool]
    reason: NotRequired[str]


class ClusterDoc(TypedDict):
    """``GET /overlay-master/cluster``: the replicas, the leader, the revision."""

    self: str
    leader: NotRequired[str]
    revision: int
    replicas: list[ReplicaDoc]


class ClusterStateDoc(TypedDict):
    """``GET /overlay-master/state``."""

    agents: list[AgentDoc]
    network: NetworkDoc


class WatchDoc(TypedDict):
    """``GET /overlay-master/watch``: the whole state (``full``) or the changes after ``since``."""

    agents: list[AgentDoc]  # changed or added records (all of them when full)
    deleted: list[str]  # IPs of agents removed since ``since``
    full: bool
    network: NetworkDoc
    revision: int
    # With ``include=containers``: each agent whose containers changed (all of them when full).
    containers: NotRequired[list[AgentContainersDoc]]
