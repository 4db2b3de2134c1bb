"""The shapes of the agent's HTTP answers, and their JSON Schemas for its OpenAPI document
(api.py). The answers themselves are built in view.py and api.py; these types only describe them,
so that a client (or a schema-driven fuzzer) can check every answer against the schema.

The overlay document is DC/OS's ``AgentInfo`` (docs/api.md; its parts come from
overlay_wire.contract) with two local additions: each overlay's ``state`` and, per Mesos bridge,
its container-address ``capacity``.

``json_schema`` reads the ``TypedDict`` annotations itself: pydantic refuses ``typing.TypedDict``
before Python 3.12, and on 3.11 ``__required_keys__`` is wrong for a module with postponed
annotations (every key counts as required), so ``NotRequired`` is read from the hints instead.
"""

from __future__ import annotations

import types
from enum import Enum
from ipaddress import IPv4Address, IPv6Address
from typing import (
    Any,
    Literal,
    NotRequired,
    TypedDict,
    Union,
    get_args,
    get_origin,
    get_type_hints,
    is_typeddict,
)

from overlay_wire.contract import BackendDoc, BridgeDoc, OverlayInfoDoc, Status


class CapacityDoc(TypedDict):
    """Container addresses of a Mesos bridge, from host-local's leases."""

    total: int  # of the IPv4 half; of the IPv6 half on an IPv6-only network
    used: int
    free: int
    addresses: list[IPv4Address | IPv6Address]  # in use, of that half


class CapacityErrorDoc(TypedDict):
    """host-local's lease directory could not be read."""

    error: str


class MesosBridgeDoc(TypedDict):
    name: str
    ip: NotRequired[str]  # the lower half of the agent's block
    ip6: NotRequired[str]
    capacity: NotRequired[CapacityDoc | CapacityErrorDoc]  # once the bridge is built


class OverlayStateDoc(TypedDict):
    status: Status
    error: NotRequired[str]


class LocalOverlayDoc(TypedDict):
    backend: BackendDoc
    info: OverlayInfoDoc
    state: OverlayStateDoc
    subnet: NotRequired[str]
    subnet6: NotRequired[str]
    mesos_bridge: NotRequired[MesosBridgeDoc]
    docker_bridge: NotRequired[BridgeDoc]


class OverlayAnswer(TypedDict):
    """``GET /overlay-agent/overlay``: our record as the masters sent it, plus local state."""

    ip: IPv4Address
    overlays: list[LocalOverlayDoc]


class HealthAnswer(TypedDict):
    status: Literal["ok", "failing"]
    reason: NotRequired[str]  # with "failing": what is wrong


class ReadinessAnswer(TypedDict):
    ready: bool


_SCALARS: dict[Any, dict[str, Any]] = {
    str: {"type": "string"},
    int: {"type": "integer"},
    bool: {"type": "boolean"},
    IPv4Address: {"type": "string", "format": "ipv4"},
    IPv6Address: {"type": "string", "format": "ipv6"},
}


def json_schema(tp: Any) -> dict[str, Any]:
    """The JSON Schema of a type built from TypedDicts, lists, unions, literals, enums and
    scalars. Objects stay open (``additionalProperties`` unset): the masters may add keys."""
    origin = get_origin(tp)
    if tp in _SCALARS:
        return dict(_SCALARS[tp])
    if is_typeddict(tp):
        return _object(tp)
    if isinstance(tp, type) and issubclass(tp, Enum):
        return {"type": "string", "enum": [m.value for m in tp]}
    if origin is list:
        return {"type": "array", "items": json_schema(get_args(tp)[0])}
    if origin is Literal:
        return {"type": "string", "enum": list(get_args(tp))}
    if origin in (Union, types.UnionType):
        return {"anyOf": [json_schema(arg) for arg in get_args(tp)]}
    raise TypeError(f"no JSON Schema for {tp!r}")


def _object(tp: Any) -> dict[str, Any]:
    properties, required = {}, []
    for key, hint in get_type_hints(tp, include_extras=True).items():
        optional = get_origin(hint) is NotRequired
        properties[key] = json_schema(get_args(hint)[0] if optional else hint)
        if not optional:
            required.append(key)
    return {"type": "object", "properties": properties, "required": required}
