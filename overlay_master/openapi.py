"""The master's OpenAPI document, exact: every answer each route can give, with its schema.

FastAPI derives paths, parameters and request bodies from the routes; this module adds what it
cannot see:
* response schemas of the DC/OS documents, translated from the contract's ``TypedDict`` types
  (``overlay_wire.contract``), so the published schema and the documents cannot drift apart;
* every error status a route can answer, each with the JSON error body ``{"error", "message"}``
  and its headers (``WWW-Authenticate`` on 401, ``Allow`` on 405, ``Retry-After`` on 503);
* bearer-token security on the operations that check the token (reads only with protect_reads);
* ``GET /overlay-master/watch``, which the raw ASGI handler in ``watch`` serves outside FastAPI.
"""

from __future__ import annotations

import typing
from collections.abc import Callable
from typing import Any, NotRequired

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from overlay_master.http_edge import ApiSettings
from overlay_wire import contract

BEARER = "bearer"
REF = "#/components/schemas/"
DOCUMENTS: tuple[type, ...] = (
    contract.ClusterStateDoc,
    contract.WatchDoc,
    contract.AgentDoc,
    contract.NetworkListDoc,
    contract.VirtualNetworkDoc,
    contract.NetworkDeletedDoc,
    contract.ContainerListDoc,
    contract.ContainersReportedDoc,
    contract.ClusterDoc,
)
IPV4: dict[str, Any] = {"type": "string", "format": "ipv4"}
REVISION: dict[str, Any] = {"type": "integer", "minimum": 0}

# Field schemas the Python types do not say (what the master guarantees beyond "a string").
REFINED: dict[tuple[str, str], dict[str, Any]] = {
    ("AgentDoc", "ip"): IPV4,
    ("StateDoc", "status"): {"type": "string", "enum": list(contract.STATUSES)},
    ("VxlanDoc", "vni"): {"type": "integer", "const": contract.VNI},
    ("VxlanDoc", "vtep_name"): {"type": "string", "const": contract.VTEP_NAME},
    ("WatchDoc", "deleted"): {"type": "array", "items": IPV4},
    ("WatchDoc", "revision"): REVISION,
}

STATUS_TEXT = {
    401: "Missing or wrong bearer token (`unauthorized`).",
    404: "The agent or network does not exist (`unknown_agent`, `unknown_network`).",
    405: "Method not allowed; `Allow` lists the methods of this path (`method_not_allowed`).",
    409: "In conflict with the current state: addresses exhausted (`vtep_exhausted`, "
    "`vtep6_exhausted`), a status report on an overlay the agent does not hold "
    "(`unknown_overlay`), a network name taken (`network_exists`) or address space in use "
    "(`network_overlap`), a network still in use (`network_in_use`).",
    422: "Bad input: a body, parameter or IP address that is not valid, or not valid JSON "
    "(`invalid_request`, `invalid_ip`, ...). `message` names the problem.",
    500: "The allocator rejected the command with an internal error (`internal_error`).",
    503: "No quorum, no leader, an unknown outcome, or no network config yet (`unavailable`, "
    "`not_configured`, ...): retry the same request (after `Retry-After` seconds); it is safe.",
}
ERROR_HEADERS: dict[int, dict[str, Any]] = {
    401: {"WWW-Authenticate": {"schema": {"type": "string", "const": "Bearer"}, "required": True}},
    405: {"Allow": {"schema": {"type": "string"}, "required": True}},
    503: {"Retry-After": {"schema": {"type": "integer", "minimum": 0}, "required": True}},
}
REVISION_HEADERS = {
    contract.REVISION_HEADER: {
        "description": "The state revision this answer reflects.",
        "schema": REVISION,
        "required": True,
    }
}

# What a client can do next with an agent record it was given (OpenAPI links, which also let a
# stateful fuzzer chain registration -> read -> status report -> deletion -> read).
AGENT_LINKS = {
    "agent": {"operationId": "agent", "parameters": {"ip": "$response.body#/ip"}},
    "status": {"operationId": "status", "parameters": {"ip": "$response.body#/ip"}},
    "delete": {"operationId": "delete", "requestBody": {"agents": ["$response.body#/ip"]}},
}

EXTRA_SCHEMAS: dict[str, dict[str, Any]] = {
    "Error": {
        "type": "object",
        "properties": {"error": {"type": "string"}, "message": {"type": "string"}},
        "required": ["error", "message"],
        "additionalProperties": False,
    },
    "Leader": {
        "type": "object",
        "properties": {
            "leader": {"type": ["string", "null"]},
            "self": {"type": "string"},
            "role": {"type": "string", "enum": ["follower", "candidate", "leader", "unknown"]},
        },
        "required": ["leader", "self", "role"],
        "additionalProperties": False,
    },
    "Liveness": {
        "type": "object",
        "properties": {"alive": {"type": "boolean"}},
        "required": ["alive"],
        "additionalProperties": False,
    },
    "Readiness": {
        "type": "object",
        "properties": {
            "ready": {"type": "boolean"},
            "reason": {"type": "string"},
            "config_drift": {
                "type": "array",
                "items": {"type": "string"},
                "description": "how this replica's config file differs from the log "
                "(the log's networks apply)",
            },
        },
        "required": ["ready", "reason", "config_drift"],
        "additionalProperties": False,
    },
}


def document_schemas(*roots: type) -> dict[str, dict[str, Any]]:
    """JSON Schemas of ``TypedDict`` documents and every document they contain, by class name.

    Keys are exact (``additionalProperties: false``): the master emits no key its contract does
    not name, and leaves optional ones out rather than sending null."""
    schemas: dict[str, dict[str, Any]] = {}
    pending = list(roots)
    while pending:
        doc = pending.pop()
        if doc.__name__ in schemas:
            continue
        properties, required = {}, []
        for key, hint in typing.get_type_hints(doc, include_extras=True).items():
            optional = typing.get_origin(hint) is NotRequired
            if not optional:
                required.append(key)
            value = typing.get_args(hint)[0] if optional else hint
            properties[key] = REFINED.get((doc.__name__, key)) or _type_schema(
                value, pending.append
            )
        schemas[doc.__name__] = {
            "type": "object",
            "properties": properties,
            "required": required,
            "additionalProperties": False,
        }
    return schemas


def _type_schema(hint: Any, found: Callable[[type], None]) -> dict[str, Any]:
    simple = {str: "string", int: "integer", bool: "boolean"}
    if hint in simple:
        return {"type": simple[hint]}
    if typing.get_origin(hint) is list:
        (item,) = typing.get_args(hint)
        return {"type": "array", "items": _type_schema(item, found)}
    if typing.is_typeddict(hint):
        found(hint)
        return {"$ref": REF + hint.__name__}
    raise TypeError(f"no JSON Schema for {hint!r} in the wire contract")


# -- per-route pieces (used by the route decorators in ``api``) ------------------------------------


def responses(
    ok: str | None,
    *errors: int,
    secured: bool = False,
    revision: bool = True,
    success: int = 200,
) -> dict[int | str, dict[str, Any]]:
    """A route's answers: its success document and every error it can give (405 everywhere)."""
    answers: dict[int | str, dict[str, Any]] = {}
    if ok is not None:
        answers[success] = {
            "description": "Created" if success == 201 else "OK",
            "content": {contract.JSON: {"schema": {"$ref": REF + ok}}},
        }
        if revision:
            answers[success]["headers"] = REVISION_HEADERS
        if ok == "AgentDoc":
            answers[success]["links"] = AGENT_LINKS
    for status in sorted({*errors, 405, *((401,) if secured else ())}):
        answers[status] = error_response(status)
    return answers


def security(secured: bool) -> dict[str, Any] | None:
    """The operation's ``security`` (bearer token) when it checks the token."""
    return {"security": [{BEARER: []}]} if secured else None


def error_response(status: int, text: str | None = None) -> dict[str, Any]:
    answer: dict[str, Any] = {
        "description": text or STATUS_TEXT[status],
        "content": {contract.JSON: {"schema": {"$ref": REF + "Error"}}},
    }
    if status in ERROR_HEADERS:
        answer["headers"] = ERROR_HEADERS[status]
    return answer


def watch_operation(settings: ApiSettings) -> dict[str, Any]:
    """``GET /overlay-master/watch`` (served by ``watch.WatchFastPath``, outside FastAPI)."""
    secured = settings.protect_reads and settings.token is not None
    op: dict[str, Any] = {
        "summary": "Long-poll the changes after a revision",
        "operationId": "watch",
        "parameters": [
            {
                "name": "since",
                "in": "query",
                "required": False,
                "description": "the revision the client has; 0 for the full state",
                "schema": {"type": "integer", "minimum": 0, "default": 0},
            },
            {
                "name": "timeout",
                "in": "query",
                "required": False,
                "description": "seconds to wait for a change before answering an empty delta",
                "schema": {
                    "type": "number",
                    "minimum": 0,
                    "maximum": settings.max_watch_timeout,
                    "default": 30,
                },
            },
            {
                "name": "include",
                "in": "query",
                "required": False,
                "description": "containers: the answer also carries the container reports that "
                "changed (all of them when full)",
                "schema": {"type": "string", "enum": ["none", "containers"], "default": "none"},
            },
        ],
        "responses": {
            str(k): v for k, v in responses("WatchDoc", 422, 503, secured=secured).items()
        },
        **(security(secured) or {}),
    }
    return {"get": op}


def install(app: FastAPI, settings: ApiSettings) -> None:
    """Make ``app.openapi()`` the exact document (built once, on first use)."""

    def build() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(title=app.title, version=app.version, routes=app.routes)
            schema["paths"][contract.WATCH_PATH] = watch_operation(settings)
            components = schema.setdefault("components", {})
            found = components.setdefault("schemas", {})
            for unused in ("HTTPValidationError", "ValidationError"):
                found.pop(unused, None)
            found.update(EXTRA_SCHEMAS)
            found.update(document_schemas(*DOCUMENTS))
            if settings.token is not None:
                components["securitySchemes"] = {BEARER: {"type": "http", "scheme": "bearer"}}
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = build  # type: ignore[method-assign]


def probe(ok: str, failing: str) -> dict[int | str, dict[str, Any]]:
    """A health probe's answers: the same document with 200 or 503."""
    answers = responses(ok, revision=False)
    answers[503] = {
        "description": failing,
        "content": {contract.JSON: {"schema": {"$ref": REF + ok}}},
    }
    return answers


def prometheus() -> dict[int | str, dict[str, Any]]:
    """``/metrics``: Prometheus' text exposition format."""
    answers = responses(None)
    answers[200] = {
        "description": "Prometheus text exposition format",
        "content": {contract.PROMETHEUS_TEXT: {"schema": {"type": "string"}}},
    }
    return answers
