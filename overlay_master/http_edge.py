"""What every HTTP handler of the master shares: settings, the error type, the token check.

Errors are answered as ``{"error": reason, "message": text}`` (``error_body``), by FastAPI's
exception handlers in ``api`` and by the raw watch handler in ``watch`` alike.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
from dataclasses import dataclass

from starlette.convertors import Convertor, register_url_convertor

RETRY_AFTER = "1"


@dataclass(frozen=True)
class ApiSettings:
    token: str | None = None
    protect_reads: bool = False
    write_timeout: float = 5.0
    read_timeout: float = 3.0
    max_watch_timeout: float = 300.0


class ApiError(Exception):
    """An answer other than 200: HTTP status, machine-readable reason, plain words."""

    def __init__(self, status: int, reason: str, message: str, retry: bool = False) -> None:
        super().__init__(message)
        self.status, self.reason, self.message, self.retry = status, reason, message, retry


def error_body(reason: str, message: str) -> bytes:
    return json.dumps({"error": reason, "message": message}).encode()


def check_token(token: str | None, header: str) -> None:
    """Raise a 401 ``ApiError`` unless ``header`` is ``Bearer <token>`` (or no token is set)."""
    if token is None:
        return
    scheme, _, given = header.partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip(), token):
        raise ApiError(401, "unauthorized", "missing or wrong bearer token")


def check_ip(ip: str) -> str:
    """The canonical text of an agent's IPv4 address; a 422 ``ApiError`` if it is not one."""
    try:
        return str(ipaddress.IPv4Address(ip))
    except ValueError:
        raise ApiError(422, "invalid_ip", f"{ip!r} is not an IPv4 address") from None


class AgentPathConvertor(Convertor[str]):
    """``{ip:agent}``: one path segment, except ``delete``.

    ``/overlay-master/agents/delete`` is its own resource (POST); without this, a GET of it would
    be read as the agent ``delete`` (422) and a PUT would name GET in its 405's ``Allow``."""

    regex = "(?!delete$)[^/]+"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


def register_convertors() -> None:
    register_url_convertor("agent", AgentPathConvertor())
