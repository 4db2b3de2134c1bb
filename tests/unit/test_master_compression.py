"""Gzip of big answers: who gets it, that it round-trips, and that one revision is packed once."""

from __future__ import annotations

import gzip

import httpx
import pytest

from overlay_master import compression
from overlay_master.compression import Gzipper, accepts_gzip
from overlay_wire.contract import AGENTS_PATH, STATE_PATH, WATCH_PATH
from tests.fakes.app import AUTH, serve
from tests.fakes.node import FakeNode

pytestmark = [pytest.mark.unit]

BIG = b'{"agents":[' + b'{"ip":"10.0.0.1"},' * 8000 + b"{}]}"


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("gzip", True),
        ("gzip, deflate, br", True),
        ("deflate, GZIP;q=0.5", True),
        ("*", True),
        ("gzip;q=0", False),
        ("gzip;q=0.0, deflate", False),
        ("gzip;q=x", False),
        ("deflate, br", False),
        ("identity", False),
        ("", False),
        (None, False),
    ],
)
def test_accept_encoding_is_read_as_rfc_9110_says(header: str | None, expected: bool) -> None:
    assert accepts_gzip(header) is expected


def test_small_bodies_and_clients_that_do_not_ask_get_the_plain_bytes() -> None:
    packer = Gzipper()
    small = b'{"agents":[]}'
    assert packer.encode(small, "gzip") == (small, None)
    assert packer.encode(BIG, "identity") == (BIG, None)


def test_a_big_body_is_gzipped_once_and_round_trips() -> None:
    packer = Gzipper()
    packed, encoding = packer.encode(BIG, "gzip, deflate")
    assert encoding == "gzip" and gzip.decompress(packed) == BIG
    assert len(packed) * 10 < len(BIG)
    again, _ = packer.encode(BIG, "gzip")
    assert again is packed  # the same plain object: served from the cache
    equal_copy = bytes(bytearray(BIG))
    other, _ = packer.encode(equal_copy, "gzip")
    assert other is not packed and gzip.decompress(other) == BIG  # identity, not equality


def test_the_cache_keeps_only_the_newest_bodies() -> None:
    packer = Gzipper(keep=2)
    bodies = [BIG + bytes([i]) for i in range(3)]
    first = packer.encode(bodies[0], "gzip")[0]
    for body in bodies[1:]:
        packer.encode(body, "gzip")
    assert packer.encode(bodies[0], "gzip")[0] is not first  # evicted, packed again


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_the_watch_and_the_state_are_gzipped_when_asked(anyio_backend: str) -> None:
    node = FakeNode()
    async with serve(node) as client:
        for i in range(1, 260):
            answer = await client.post(
                AGENTS_PATH, json={"ip": f"10.0.{i // 200}.{i % 200 + 1}"}, headers=AUTH
            )
            assert answer.status_code == 200, answer.text
        snap = node.snapshot()
        full = node.encoding.watch_bytes(snap, 0)
        assert len(full) >= compression.MIN_BYTES
        for path, plain in ((WATCH_PATH, full), (STATE_PATH, node.encoding.state_bytes(snap))):
            packed = await client.get(
                path, params={"timeout": 0}, headers={"accept-encoding": "gzip"}
            )
            assert packed.status_code == 200
            assert packed.headers["content-encoding"] == "gzip"
            assert packed.headers["vary"] == "Accept-Encoding"
            assert int(packed.headers["content-length"]) < len(plain) // 5
            assert packed.content == plain  # httpx undoes the gzip
            assert packed.headers["x-overlay-revision"] == str(snap.revision)
            bare = await client.get(
                path, params={"timeout": 0}, headers={"accept-encoding": "identity"}
            )
            assert "content-encoding" not in bare.headers
            assert bare.content == plain
        delta = await client.get(
            WATCH_PATH, params={"since": snap.revision - 1}, headers={"accept-encoding": "gzip"}
        )
        assert delta.status_code == 200 and "content-encoding" not in delta.headers
        assert isinstance(client, httpx.AsyncClient)
