"""The raw PySyncObj baseline: one replica of a replicated counter, driven over a line protocol.

``python -m bench.raw_counter --self H:P --peers H:P,H:P --data-dir D --password-file F
--control H:P [--batch]``

It uses the master's exact ``SyncObjConf`` (``overlay_master.node.Node._conf``: timeouts 0.5/1.0 s,
heartbeat 0.05 s, batching off, leader fallback 2 s, password, journal and dump), so the only
difference from a master replica is everything the master adds on top of Raft: HTTP, FastAPI,
the allocator, JSON, and syncing the journal before acknowledging (PySyncObj never syncs).
``--batch`` turns PySyncObj's own batching on (``appendEntriesUseBatch``: the leader sends every
entry appended meanwhile in one message per follower, each tick), the faster raw baseline. Writes are bridged to asyncio with a callback exactly as
``Node.submit`` does. Control lines:

``inc``     -> ``ok <value>`` once the increment is applied here, else ``err <reason>``
``status``  -> ``status {"ready": ..., "leader": ..., "role": ...}``
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from pysyncobj import FAIL_REASON, SyncObj, SyncObjConf
from pysyncobj.batteries import ReplCounter

from overlay_master.node import Node, RaftSettings

WRITE_TIMEOUT = 5.0


def master_conf(settings: RaftSettings) -> SyncObjConf:
    """The SyncObjConf a master replica with these settings uses (``_conf`` reads only ``raft``)."""
    conf: SyncObjConf = Node._conf(SimpleNamespace(raft=settings))  # type: ignore[arg-type]
    return conf


class RawReplica:
    def __init__(self, settings: RaftSettings, batch: bool = False) -> None:
        self.counter = ReplCounter()
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        conf = master_conf(settings)
        conf.appendEntriesUseBatch = batch
        self.syncobj = SyncObj(
            settings.self_address, list(settings.peers), conf, consumers=[self.counter]
        )

    async def increment(self) -> str:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[str] = loop.create_future()

        def settle(value: Any, error: int) -> None:
            if not future.done():
                future.set_result(f"ok {value}" if error == FAIL_REASON.SUCCESS else f"err {error}")

        def done(value: Any, error: int) -> None:
            loop.call_soon_threadsafe(settle, value, error)

        self.counter.inc(callback=done)
        try:
            return await asyncio.wait_for(future, WRITE_TIMEOUT)
        except TimeoutError:
            return "err timeout"

    def status(self) -> str:
        leader = self.syncobj._getLeader()
        ready = bool(self.syncobj.isReady() and leader is not None and self.syncobj.hasQuorum)
        try:
            role = self.syncobj.getStatus().get("state", -1)
        except RuntimeError:  # a dict changed size on the tick thread
            role = -1
        plain = {"ready": ready, "leader": None if leader is None else str(leader.id), "role": role}
        return "status " + json.dumps(plain)

    async def serve_client(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        try:
            while line := await reader.readline():
                command = line.strip()
                if command == b"inc":
                    answer = await self.increment()
                elif command == b"status":
                    answer = self.status()
                else:
                    answer = f"err unknown command {command!r}"
                writer.write(answer.encode() + b"\n")
        except ConnectionError:
            pass
        finally:
            writer.close()


async def serve(replica: RawReplica, control: str) -> None:
    host, _, port = control.rpartition(":")
    server = await asyncio.start_server(replica.serve_client, host, int(port), backlog=2048)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    async with server:
        await stop.wait()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--self", dest="self_address", required=True)
    p.add_argument("--peers", required=True)
    p.add_argument("--data-dir", required=True)
    p.add_argument("--password-file", required=True)
    p.add_argument("--control", required=True)
    p.add_argument("--batch", action="store_true", help="PySyncObj's own batching on")
    args = p.parse_args()
    settings = RaftSettings(
        self_address=args.self_address,
        peers=tuple(x for x in args.peers.split(",") if x),
        data_dir=Path(args.data_dir),
        password=Path(args.password_file).read_text().strip(),
    )
    replica = RawReplica(settings, args.batch)
    replica.syncobj.waitBinded()
    try:
        asyncio.run(serve(replica, args.control))
    finally:
        replica.syncobj.destroy_synchronous()


if __name__ == "__main__":
    main()
