"""The Docker Engine API over its unix socket (or TCP), with httpx: the I/O half of docker.py.

``Docker.ensure`` applies docker.py's pure plan (``specs``, ``diff``, ``hand_over``) to a real
daemon; the design notes are docker.py's. No docker CLI is involved.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import httpx

from overlay_agent.docker import (
    LIST_TIMEOUT,
    TIMEOUT,
    DockerNetwork,
    DockerOutcome,
    NetworkSpec,
    diff,
    parse,
)
from overlay_agent.errors import ConfigError, DockerError

log = logging.getLogger("overlay_agent.docker")


def client(host: str, timeout: float = TIMEOUT) -> httpx.Client:
    """An httpx client for a Docker host URL: ``unix:///path/docker.sock`` or ``tcp://HOST:PORT``."""
    if host.startswith("unix://"):
        path = host.removeprefix("unix://")
        if not path.startswith("/"):
            raise ConfigError(f"docker host {host!r}: expected unix:///absolute/path")
        transport = httpx.HTTPTransport(uds=path)
        return httpx.Client(transport=transport, base_url="http://docker", timeout=timeout)
    if host.startswith("tcp://"):
        return httpx.Client(base_url="http://" + host.removeprefix("tcp://"), timeout=timeout)
    raise ConfigError(f"docker host {host!r}: only unix:// and tcp:// are supported")


class Docker:
    """The Docker step against one daemon. Not thread-safe: used from the kernel thread."""

    def __init__(self, host: str, http: httpx.Client | None = None) -> None:
        self.host = host
        self.writes = 0
        self._http = http if http is not None else client(host)
        # A unix socket that is not there is refused before connecting: clearer than httpx's
        # error, and httpcore leaves the socket of a failed unix connect for the GC to close.
        unix = http is None and host.startswith("unix://")  # (a given client has its transport)
        self._socket = host.removeprefix("unix://") if unix else None

    def _reachable(self, what: str) -> None:
        if self._socket is not None and not os.path.exists(self._socket):
            raise DockerError(f"{what}: cannot reach Docker at {self.host}: no such socket")

    def close(self) -> None:
        self._http.close()

    def networks(self) -> list[DockerNetwork]:
        body = self._call("GET", "/networks", "listing networks", timeout=LIST_TIMEOUT)
        if not isinstance(body, list):
            raise DockerError(f"listing networks at {self.host}: unexpected answer {body!r:.200}")
        try:
            return [parse(raw) for raw in body]
        except (KeyError, TypeError, ValueError, AttributeError) as e:
            raise DockerError(f"listing networks at {self.host}: {e}") from e

    def network_containers(self, name: str) -> Mapping[str, Any]:
        """The ``Containers`` map of network ``name`` (``GET /networks/<name>``); empty if Docker
        has no such network."""
        what = f"inspecting network {name}"
        self._reachable(what)
        try:
            answer = self._http.request("GET", f"/networks/{name}", timeout=LIST_TIMEOUT)
        except httpx.HTTPError as e:
            raise DockerError(f"{what}: cannot reach Docker at {self.host}: {e}") from e
        if answer.status_code == 404:
            return {}
        if answer.is_error:
            raise DockerError(f"{what}: {answer.status_code} {_message(answer)}")
        try:
            containers = answer.json().get("Containers") or {}
        except (json.JSONDecodeError, AttributeError) as e:
            raise DockerError(f"{what}: Docker answered with invalid JSON") from e
        if not isinstance(containers, Mapping):
            raise DockerError(f"{what}: Containers is not an object")
        return containers

    def create(self, spec: NetworkSpec) -> None:
        self.writes += 1
        self._call("POST", "/networks/create", f"creating {spec.describe()}", spec.request())

    def remove(self, net: DockerNetwork) -> None:
        self.writes += 1
        self._call("DELETE", f"/networks/{net.id}", f"removing network {net.name} ({net.id:.12})")

    def ensure(self, want: Sequence[NetworkSpec]) -> DockerOutcome:
        """Make Docker hold ``want``; never raises for Docker's answers, reports them instead."""
        try:
            seen = self.networks()
        except DockerError as e:
            return DockerOutcome(errors={s.name: str(e) for s in want}, bridges=None)
        todo = diff(want, seen)
        errors = dict(todo.refused)
        if not todo:
            return DockerOutcome(errors, _bridges(seen))
        failed = self._remove(todo.remove, {s.name for s in want}, errors)
        created = self._create([s for s in todo.create if s.name not in failed], errors)
        try:
            bridges: frozenset[str] | None = _bridges(self.networks())
        except DockerError as e:
            log.warning("%s", e)
            bridges = None
        return DockerOutcome(errors, bridges, created, changed=True)

    def _remove(
        self, nets: Sequence[DockerNetwork], wanted: set[str], errors: dict[str, str]
    ) -> set[str]:
        failed = set()
        for net in nets:
            try:
                self.remove(net)
            except DockerError as e:
                failed.add(net.name)
                if net.name in wanted:
                    errors[net.name] = f"network {net.name} is stale and cannot be replaced: {e}"
                else:
                    log.warning("%s (retried on the next pass)", e)
        return failed

    def _create(self, todo: Sequence[NetworkSpec], errors: dict[str, str]) -> frozenset[str]:
        created = set()
        for spec in todo:
            try:
                self.create(spec)
                created.add(spec.bridge)
            except DockerError as e:
                errors[spec.name] = str(e)
        return frozenset(created)

    def _call(
        self, method: str, path: str, what: str, body: Any = None, timeout: float = TIMEOUT
    ) -> Any:
        self._reachable(what)
        try:
            answer = self._http.request(method, path, json=body, timeout=timeout)
        except httpx.TimeoutException as e:
            raise DockerError(f"{what}: Docker at {self.host} did not answer in {timeout}s") from e
        except httpx.HTTPError as e:
            raise DockerError(f"{what}: cannot reach Docker at {self.host}: {e}") from e
        if answer.is_error:
            raise DockerError(f"{what}: {answer.status_code} {_message(answer)}")
        if not answer.content:
            return None
        try:
            return answer.json()
        except json.JSONDecodeError as e:
            raise DockerError(f"{what}: Docker answered with invalid JSON") from e


def _bridges(nets: Iterable[DockerNetwork]) -> frozenset[str]:
    return frozenset(n.bridge for n in nets if n.bridge)


def _message(answer: httpx.Response) -> str:
    try:
        body = answer.json()
    except json.JSONDecodeError:
        return answer.text.strip()[:300]
    if isinstance(body, Mapping) and "message" in body:
        return str(body["message"])
    return answer.text.strip()[:300]
