"""Wire types of the master's HTTP API (pydantic): the request bodies.

Responses are the DC/OS JSON documents built in ``dcos_json`` (their types are the contract's,
``overlay_wire.contract``) and encoded once per revision in ``encoding``. Bodies are strict: a
value of the wrong JSON type (``"true"`` for a boolean, ``5`` for a string) is refused, never
coerced, so what the OpenAPI document says is exactly what is accepted.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from overlay_wire.contract import Status

STRICT = ConfigDict(extra="forbid", strict=True)
AgentIp = Annotated[str, Field(json_schema_extra={"format": "ipv4"})]
# What the config file's rules allow of a name (network.NAME_PATTERN, at most 13 characters);
# the reserved names and the rules that depend on the other networks are checked on the server.
NetworkName = Annotated[
    str,
    Field(
        min_length=1,
        max_length=13,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$",
        description="at most 13 characters; becomes m-<name>/d-<name>",
    ),
]
CIDR4 = r"^([0-9]{1,3}\.){3}[0-9]{1,3}/[0-9]{1,2}$"


class RegisterAgent(BaseModel):
    model_config = STRICT

    ip: AgentIp = Field(description="the agent's underlay IPv4 address: its identity")
    mesos_bridge: bool = True
    docker_bridge: bool = True


class OverlayStatus(BaseModel):
    model_config = STRICT

    name: str
    status: Status = Field(strict=False)  # the body is parsed JSON: a string, never a Status
    error: str | None = Field(default=None, max_length=2000)


class ReportStatus(BaseModel):
    model_config = STRICT

    overlays: list[OverlayStatus]


class DeleteAgents(BaseModel):
    model_config = STRICT

    agents: list[AgentIp]


class AddNetwork(BaseModel):
    """A virtual network to add: the config file's overlay entry (docs/api.md, "Networks")."""

    model_config = STRICT

    name: NetworkName
    subnet: str | None = Field(
        default=None, pattern=CIDR4, description="IPv4 space, e.g. 10.10.0.0/16"
    )
    prefix: int | None = Field(
        default=None, ge=0, le=30, description="each agent's IPv4 block, e.g. 24"
    )
    subnet6: str | None = Field(default=None, description="IPv6 space, e.g. fd01:c::/64")
    prefix6: int | None = Field(
        default=None, ge=0, le=126, description="each agent's IPv6 block, e.g. 80"
    )
    enabled: bool = True
    allow_from: list[NetworkName] = Field(
        default_factory=list, description="networks whose containers may reach this one's"
    )


class UpdateNetwork(BaseModel):
    """Changes to a network: leave a field out to keep it."""

    model_config = STRICT

    enabled: bool | None = Field(default=None, description="false: no new allocations")
    allow_from: list[NetworkName] | None = Field(
        default=None, description="networks whose containers may reach this one's (replaces)"
    )


class ReportedContainer(BaseModel):
    """A container on one of the agent's bridges."""

    model_config = STRICT

    id: str = Field(
        min_length=1, max_length=256, description="as the CNI runtime or Docker gave it"
    )
    network: str = Field(min_length=1, max_length=64)
    half: Literal["mesos", "docker"] = Field(description="mesos: m-<network>; docker: d-<network>")
    address: str | None = Field(default=None, description="IPv4, without prefix")
    address6: str | None = None
    name: str | None = Field(default=None, min_length=1, max_length=256)
    mac: str | None = Field(default=None, min_length=1, max_length=256)
    interface: str | None = Field(default=None, min_length=1, max_length=256)


class ReportContainers(BaseModel):
    """Every container on the agent's bridges: replaces the previous report whole."""

    model_config = STRICT

    containers: list[ReportedContainer] = Field(max_length=65536)
