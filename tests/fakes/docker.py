"""An in-memory Docker Engine (its network API) for the agent's tests, served to the real
``docker.Docker`` client through ``httpx.MockTransport``; with a ``Namespace`` it also makes the
bridges in the kernel as dockerd does.

The Engine's rules that matter to the agent (docker.py's design notes; verified on dockerd 20.10):
network names are unique (409); a network with containers attached cannot be removed (403);
creating a bridge network makes its bridge (``com.docker.network.bridge.name``) up, at MTU 1500,
with the subnet's first host as gateway, unless the bridge exists already (then Docker adopts
it as it is, adding the gateway if missing); removing a network deletes the bridge only if Docker
created it. ``down`` makes the daemon unreachable.
"""

from __future__ import annotations

import json
from ipaddress import IPv4Interface, IPv4Network
from typing import Any

import httpx

from overlay_agent.docker import BRIDGE_NAME
from overlay_agent.docker_engine import Docker
from tests.fakes.namespace import Namespace

HOST = "unix:///fake/docker.sock"
CREATED_MTU = 1500


class FakeEngine:
    def __init__(self, namespace: Namespace | None = None) -> None:
        self.networks: dict[str, dict[str, Any]] = {}
        self.calls: list[tuple[str, str]] = []
        self.busy: set[str] = set()  # names with containers attached: removal refused
        self.attached: dict[str, dict[str, Any]] = {}  # network name -> its Containers map
        self.down = False
        self.ns = namespace
        self._made: set[str] = set()  # ids of networks whose bridge Docker created

    def add(self, body: dict[str, Any]) -> str:
        nid = f"id{len(self.calls)}{body['Name']}"
        self.networks[nid] = {"Id": nid, "Driver": body.get("Driver", "bridge"), **body}
        if self.ns is not None:
            self._bridge_up(nid, body)
        return nid

    def handle(self, request: httpx.Request) -> httpx.Response:
        if self.down:
            raise httpx.ConnectError("connection refused", request=request)
        method, path = request.method, request.url.path
        self.calls.append((method, path))
        if (method, path) == ("GET", "/networks"):
            return httpx.Response(200, json=list(self.networks.values()))
        if (method, path) == ("POST", "/networks/create"):
            body = json.loads(request.content)
            if any(n["Name"] == body["Name"] for n in self.networks.values()):
                return httpx.Response(409, json={"message": f"network {body['Name']} exists"})
            return httpx.Response(201, json={"Id": self.add(body), "Warning": ""})
        if method == "GET" and path.startswith("/networks/"):
            name = path.rsplit("/", 1)[1]
            found = [n for n in self.networks.values() if name in (n["Id"], n["Name"])]
            if not found:
                return httpx.Response(404, json={"message": f"network {name} not found"})
            return httpx.Response(200, json={**found[0], "Containers": self.attached.get(name, {})})
        if method == "DELETE" and path.startswith("/networks/"):
            nid = path.rsplit("/", 1)[1]
            if nid not in self.networks:
                return httpx.Response(404, json={"message": f"network {nid} not found"})
            if self.networks[nid]["Name"] in self.busy:
                return httpx.Response(403, json={"message": "network has active endpoints"})
            self._bridge_down(nid, self.networks.pop(nid))
            return httpx.Response(204)
        return httpx.Response(404, json={"message": "page not found"})

    def writes(self) -> list[tuple[str, str]]:
        return [c for c in self.calls if c[0] != "GET"]

    def _bridge_up(self, nid: str, body: dict[str, Any]) -> None:
        assert self.ns is not None
        name = (body.get("Options") or {}).get(BRIDGE_NAME, f"br-{nid[:12]}")
        (config,) = body["IPAM"]["Config"]
        subnet = IPv4Network(config["Subnet"])
        gateway = IPv4Interface((subnet.network_address + 1, subnet.prefixlen))
        with self.ns.lock:
            bridge = self.ns.find(name)
            if bridge is None:
                self.ns.link_add(name, "bridge", CREATED_MTU)
                self._made.add(nid)
            if gateway not in self.ns.link(name).addresses:
                self.ns.addr_add(name, gateway)
            self.ns.link_set(name, up=True)

    def _bridge_down(self, nid: str, network: dict[str, Any]) -> None:
        if self.ns is None or nid not in self._made:
            return
        self._made.discard(nid)
        name = (network.get("Options") or {}).get(BRIDGE_NAME, f"br-{nid[:12]}")
        if self.ns.find(name) is not None:
            self.ns.link_del(name)


def docker_edge(engine: FakeEngine) -> Docker:
    """The real ``Docker`` client, talking to ``engine``."""
    http = httpx.Client(transport=httpx.MockTransport(engine.handle), base_url="http://docker")
    return Docker(HOST, http)
