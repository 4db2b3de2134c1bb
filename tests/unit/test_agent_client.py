"""MasterClient against in-memory masters (httpx.MockTransport): failover, backoff, Retry-After,
long-poll parameters, errors that must not be retried; and ClusterState from watch answers."""

from __future__ import annotations

import asyncio
import random
from typing import Any

import httpx
import pytest

from overlay_agent.client import Backoff, MasterClient
from overlay_agent.cluster import ClusterState
from overlay_agent.errors import Rejected, StateError, Unauthorized

pytestmark = pytest.mark.unit

A, B, C = "http://m1:8080", "http://m2:8080", "http://m3:8080"


class Masters:
    """Three fake replicas: each host answers with a scripted sequence of (status, body, headers)."""

    def __init__(
        self, script: dict[str, list[tuple[int, Any, dict[str, str]] | Exception]]
    ) -> None:
        self.script = script
        self.seen: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.seen.append(request)
        host = f"http://{request.url.host}:{request.url.port}"
        step = self.script[host].pop(0) if self.script[host] else (200, {"ok": True}, {})
        if isinstance(step, Exception):
            raise step
        status, body, headers = step
        return httpx.Response(status, json=body, headers=headers)


def client(masters: Masters, sleeps: list[float], token: str | None = "s3cret") -> MasterClient:
    async def sleep(seconds: float) -> None:
        sleeps.append(seconds)

    return MasterClient(
        [A, B, C],
        token,
        transport=httpx.MockTransport(masters),
        backoff=Backoff(base=0.1, cap=2.0, rng=random.Random(7)),
        sleep=sleep,
    )


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def test_fails_over_on_connection_errors_and_5xx_then_sticks_to_the_good_master() -> None:
    masters = Masters(
        {
            A: [httpx.ConnectError("refused")],
            B: [(503, {"error": "no_quorum"}, {"Retry-After": "1"})],
            C: [(200, {"ip": "10.0.0.2"}, {}), (200, {"ip": "10.0.0.2"}, {})],
        }
    )
    sleeps: list[float] = []
    c = client(masters, sleeps)
    assert run(c.register("10.0.0.2", True, False)) == {"ip": "10.0.0.2"}
    assert [r.url.host for r in masters.seen] == ["m1", "m2", "m3"]
    assert masters.seen[-1].headers["authorization"] == "Bearer s3cret"
    assert masters.seen[-1].read() == b'{"ip":"10.0.0.2","mesos_bridge":true,"docker_bridge":false}'
    assert len(sleeps) == 2 and sleeps[1] >= 1.0  # Retry-After honoured
    assert c.failures == 2 and c.master == C
    run(c.report_status("10.0.0.2", [{"name": "dcos", "status": "STATUS_OK"}]))
    assert masters.seen[-1].url.host == "m3" and masters.seen[-1].method == "PUT"
    assert masters.seen[-1].url.path == "/overlay-master/agents/10.0.0.2/status"


def test_backoff_is_jittered_capped_and_reset_by_success() -> None:
    b = Backoff(base=0.1, cap=2.0, rng=random.Random(1))
    delays = [b.next() for _ in range(40)]
    assert all(0 <= d <= 2.0 for d in delays)
    assert max(delays[:3]) <= 0.4 and len(set(delays)) == len(delays)
    b.reset()
    assert b.next() <= 0.1


def test_retry_after_is_capped() -> None:
    masters = Masters({A: [(503, {}, {"Retry-After": "3600"})], B: [], C: []})
    sleeps: list[float] = []
    run(client(masters, sleeps).register("10.0.0.2", True, True))
    assert sleeps == [2.0]


def test_unauthorized_and_rejected_are_not_retried() -> None:
    masters = Masters(
        {A: [(401, {"error": "unauthorized", "message": "bad token"}, {})], B: [], C: []}
    )
    with pytest.raises(Unauthorized):
        run(client(masters, []).register("10.0.0.2", True, True))
    masters = Masters({A: [(422, {"error": "bad_input", "message": "ip"}, {})], B: [], C: []})
    with pytest.raises(Rejected) as caught:
        run(client(masters, []).report_status("x", []))
    assert caught.value.status == 422 and caught.value.reason == "bad_input"
    assert len(masters.seen) == 1


def test_watch_sends_since_and_timeout() -> None:
    masters = Masters(
        {A: [(200, {"revision": 5, "full": False, "agents": [], "deleted": []}, {})], B: [], C: []}
    )
    answer = run(client(masters, []).watch(4, 30))
    assert answer["revision"] == 5
    assert dict(masters.seen[0].url.params) == {"since": "4", "timeout": "30"}
    assert masters.seen[0].url.path == "/overlay-master/watch"


def test_cluster_state_follows_full_and_delta_answers() -> None:
    network = {"overlays": [], "vtep_subnet": "44.128.0.0/20", "vtep_mac_oui": "70:B3:D5:00:00:00"}
    a, b, c = ({"ip": ip, "overlays": []} for ip in ("10.0.0.1", "10.0.0.2", "10.0.0.3"))
    s = ClusterState().apply(
        {"revision": 3, "full": True, "network": network, "agents": [a, b], "deleted": []}
    )
    b2 = {**b, "overlays": [{"info": {"name": "dcos"}}]}
    s = s.apply(
        {
            "revision": 4,
            "full": False,
            "network": network,
            "agents": [c, b2],
            "deleted": ["10.0.0.1"],
        }
    )
    assert s.revision == 4
    assert s.document() == {"agents": [b2, c], "network": network}
    s = s.apply({"revision": 9, "full": True, "network": network, "agents": [a], "deleted": []})
    assert [r["ip"] for r in s.document()["agents"]] == ["10.0.0.1"]
    with pytest.raises(StateError):
        s.apply({"full": True})
    with pytest.raises(StateError):
        s.apply({"revision": 10, "agents": [{"no": "ip"}]})
