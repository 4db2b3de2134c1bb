"""Wire types of the master's HTTP API (pydantic), shared with the agent.

Only request bodies are modelled: responses are the DC/OS JSON documents built in ``dcos_json``
and encoded once per revision in ``node``.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from overlay_wire.contract import Status


class RegisterAgent(BaseModel):
    model_config = ConfigDict(extra="forbid")

    ip: str = Field(description="the agent's underlay IPv4 address: its identity")
    mesos_bridge: bool = True
    docker_bridge: bool = True


class OverlayStatus(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    status: Status
    error: str | None = Field(default=None, max_length=2000)


class ReportStatus(BaseModel):
    model_config = ConfigDict(extra="forbid")

    overlays: list[OverlayStatus]


class DeleteAgents(BaseModel):
    model_config = ConfigDict(extra="forbid")

    agents: list[str]
