"""overlay-master's agent-facing HTTP API in memory (docs/api.md), to drive ``MasterClient``
through ``httpx.MockTransport(master.handle)``.

Records are the ones a master hands out (tests/netns/statedoc.py: the n-th agent to register gets
VTEP n and block n - 1 of each overlay; a deleted agent that comes back gets its slot again).
Every change bumps the revision; networks are added, updated and deleted at runtime as the
masters' network API does (one revision each; adding or deleting changes every agent's record in
that revision). A watch answer is the whole state when ``since`` is 0 or older than the changes
kept (``compact``), else the changes since ``since``; with nothing new it waits until something
changes or ``timeout`` passes (on the event loop: no thread, no wall-clock sleep unless a test
leaves it waiting). A status report sets the overlays' ``state`` (a new revision if
it changed anything). Replicas can be unreachable (``down``) or answer 503 + ``Retry-After``
(``unavailable``), by host name.
"""

from __future__ import annotations

import asyncio
import copy
import json
from ipaddress import IPv4Address
from typing import Any

import httpx

from overlay_wire.contract import AGENTS_PATH, REVISION_HEADER, STATUSES, WATCH_PATH
from tests import statedoc

URLS = ("http://m1:8080", "http://m2:8080")


class FakeMaster:
    def __init__(
        self, overlays: list[tuple[str, str, int]] | None = None, token: str | None = None
    ) -> None:
        self.overlays = list(overlays or [statedoc.DCOS])
        self.network: dict[str, Any] = statedoc.state([], self.overlays)["network"]
        self.bridges: dict[str, tuple[bool, bool]] = {}  # ip -> (mesos, docker) it asked for
        self.token = token
        self.revision = 1
        self.agents: dict[str, dict[str, Any]] = {}
        self.down: set[str] = set()  # host names refusing connections
        self.unavailable: set[str] = set()  # host names answering 503
        self.requests: list[tuple[str, str, str]] = []  # (host, method, path) that got an answer
        self.reports: list[tuple[str, list[dict[str, Any]]]] = []
        self.containers: dict[str, list[dict[str, Any]]] = {}  # ip -> its last container report
        self.watches: list[tuple[int, bool]] = []  # (since, full) of every watch answered
        self.slots: dict[str, int] = {}  # ip -> n: the n-th agent to register
        self._log: list[tuple[int, str]] = []  # (revision, ip) of each change
        self._horizon = 0  # watches from before this revision get the whole state
        self._changed: asyncio.Event | None = None

    # -- what an operator or another agent does ------------------------------------------------

    def register(
        self, ip: str, mesos_bridge: bool = True, docker_bridge: bool = True
    ) -> dict[str, Any]:
        if ip in self.agents:
            return self.agents[ip]
        self.slots.setdefault(ip, len(self.slots) + 1)
        self.bridges[ip] = (mesos_bridge, docker_bridge)
        self.agents[ip] = self._record(ip)
        self._change(ip)
        return self.agents[ip]

    def delete(self, ip: str) -> None:
        del self.agents[ip]
        self._change(ip)

    def add_network(self, name: str, subnet: str, prefix: int, **extra: Any) -> None:
        """A network added at runtime: every agent gets its block in the same revision."""
        self.overlays.append((name, subnet, prefix))
        doc = {"enabled": True, "name": name, "prefix": prefix, "subnet": subnet, **extra}
        self.network = {**self.network, "overlays": [*self.network["overlays"], doc]}
        self._rebuild()

    def update_network(self, name: str, **fields: Any) -> None:
        """``enabled`` / ``allow_from`` changed: the network list only, no agent record."""
        overlays = [{**o, **fields} if o["name"] == name else o for o in self.network["overlays"]]
        self.network = {**self.network, "overlays": overlays}
        self._change()

    def delete_network(self, name: str) -> None:
        """Gone from the list and from every agent, in one revision."""
        self.overlays = [o for o in self.overlays if o[0] != name]
        overlays = [o for o in self.network["overlays"] if o["name"] != name]
        self.network = {**self.network, "overlays": overlays}
        self._rebuild()

    def _record(self, ip: str) -> dict[str, Any]:
        record = statedoc.record(ip, self.slots[ip], self.overlays)
        mesos_bridge, docker_bridge = self.bridges[ip]
        for overlay in record["overlays"]:
            if not mesos_bridge:
                del overlay["mesos_bridge"]
            if not docker_bridge:
                del overlay["docker_bridge"]
        return record

    def _rebuild(self) -> None:
        for ip in self.agents:
            self.agents[ip] = self._record(ip)
        self._change(*self.agents)

    def compact(self) -> None:
        """Forget the changes so far: every older ``since`` gets the whole state."""
        self._horizon = self.revision

    def outage(self, down: bool = True) -> None:
        """Every replica unreachable (or back); long-polls in flight are cut off."""
        self.down = {httpx.URL(u).host for u in URLS} if down else set()
        if down:
            self._wake()

    def state(self) -> dict[str, Any]:
        return {"agents": [self.agents[ip] for ip in sorted(self.agents)], "network": self.network}

    def _change(self, *ips: str) -> None:
        self.revision += 1
        self._log.extend((self.revision, ip) for ip in ips)
        self._wake()

    def _wake(self) -> None:
        if self._changed is not None:
            self._changed.set()
            self._changed = None

    # -- HTTP ----------------------------------------------------------------------------------

    async def handle(self, request: httpx.Request) -> httpx.Response:
        host = request.url.host
        if host in self.down:
            raise httpx.ConnectError("connection refused", request=request)
        if host in self.unavailable:
            return _error(503, "no_quorum", "no leader", {"Retry-After": "1"})
        writes = request.method in ("POST", "PUT")
        if writes and self.token and request.headers.get("authorization") != f"Bearer {self.token}":
            return _error(401, "unauthorized", "missing or wrong token")
        path = request.url.path
        self.requests.append((host, request.method, path))
        if (request.method, path) == ("POST", AGENTS_PATH):
            return self._register(json.loads(request.content))
        if (request.method, path) == ("GET", WATCH_PATH):
            since = int(request.url.params["since"])
            return await self._watch(host, since, float(request.url.params.get("timeout", "30")))
        parts = path.removeprefix(AGENTS_PATH + "/").split("/")
        if request.method == "PUT" and len(parts) == 2 and parts[1] == "status":
            return self._status(parts[0], json.loads(request.content))
        if request.method == "PUT" and len(parts) == 2 and parts[1] == "containers":
            return self._containers(parts[0], json.loads(request.content)["containers"])
        return _error(404, "not_found", f"no route {request.method} {path}")

    def _register(self, body: dict[str, Any]) -> httpx.Response:
        try:
            ip = str(IPv4Address(body["ip"]))
        except (KeyError, ValueError):
            return _error(422, "invalid", f"bad ip in {body!r}")
        record = self.register(ip, body.get("mesos_bridge", True), body.get("docker_bridge", True))
        return self._answer(record)

    async def _watch(self, host: str, since: int, timeout: float) -> httpx.Response:
        if since >= self.revision:
            if self._changed is None:
                self._changed = asyncio.Event()
            try:
                # asyncio.timeout, not wait_for: on 3.11 wait_for loses a cancellation that
                # arrives as the event fires, and the cancelled agent would watch again.
                async with asyncio.timeout(timeout):
                    await self._changed.wait()
            except TimeoutError:
                self.watches.append((since, False))
                return self._answer(self._delta(since, since))
            if host in self.down:  # the replica died under the long-poll
                raise httpx.RemoteProtocolError("server disconnected without a response")
        full = since < self._horizon or since == 0
        self.watches.append((since, full))
        if full:
            head = {"revision": self.revision, "full": True, "network": self.network}
            return self._answer({**head, "agents": self.state()["agents"], "deleted": []})
        return self._answer(self._delta(since, self.revision))

    def _delta(self, since: int, revision: int) -> dict[str, Any]:
        touched = sorted({ip for rev, ip in self._log if since < rev <= revision})
        return {
            "revision": revision,
            "full": False,
            "network": self.network,
            "agents": [self.agents[ip] for ip in touched if ip in self.agents],
            "deleted": [ip for ip in touched if ip not in self.agents],
        }

    def _status(self, ip: str, body: dict[str, Any]) -> httpx.Response:
        record = self.agents.get(ip)
        if record is None:
            return _error(404, "unknown_agent", f"no agent {ip}")
        reports = body.get("overlays", [])
        self.reports.append((ip, copy.deepcopy(reports)))
        by_name = {o["info"]["name"]: o for o in record["overlays"]}
        changed = False
        for report in reports:
            overlay = by_name.get(report.get("name"))
            if overlay is None or report.get("status") not in STATUSES:
                return _error(422, "unknown_overlay", f"bad report {report!r}")
            state = {k: report[k] for k in ("status", "error") if k in report}
            changed |= overlay.get("state") != state
            overlay["state"] = state
        if changed:
            self._change(ip)
        return self._answer(record)

    def _containers(self, ip: str, containers: list[dict[str, Any]]) -> httpx.Response:
        """As the master: replaced whole; a changed list is a new revision that touches no
        agent record (agents watching get an empty delta)."""
        if ip not in self.agents:
            return _error(404, "unknown_agent", f"no agent {ip}")
        if self.containers.get(ip) != containers:
            self.containers[ip] = containers
            self.revision += 1
            self._wake()
        body = {"agent": ip, "revision": self.revision, "containers": len(containers)}
        return self._answer(body)

    def _answer(self, body: dict[str, Any]) -> httpx.Response:
        return httpx.Response(200, json=body, headers={REVISION_HEADER: str(self.revision)})


def _error(
    status: int, reason: str, message: str, headers: dict[str, str] | None = None
) -> httpx.Response:
    return httpx.Response(status, json={"error": reason, "message": message}, headers=headers)
