"""The agent's OpenAPI is exact: schemathesis (``st run --checks all``) against the agent's HTTP
server served for real by uvicorn on a loopback port, in front of an AgentLoop on the fakes
(tests/fakes/agent.py), finds no failure."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn

from overlay_agent.api import create_app
from tests.fakes.agent import converged, fake_agent

pytestmark = pytest.mark.integration

ST = Path(sys.executable).with_name("st")


class _Server(uvicorn.Server):
    """Without signal handlers: the test thread is not the main thread."""

    def install_signal_handlers(self) -> None:
        pass


def serve(tmp_path: Path, started: threading.Event, stop: threading.Event, url: list[str]) -> None:
    async def main() -> None:
        async with fake_agent(tmp_path, cni=True, real_time=True) as w:
            await converged(w)
            config = uvicorn.Config(
                create_app(w.agent), host="127.0.0.1", port=0, log_level="warning"
            )
            server = _Server(config)
            task = asyncio.create_task(server.serve())
            while not server.started:
                if task.done():
                    task.result()  # startup failed: raise why
                await asyncio.sleep(0.01)
            port = server.servers[0].sockets[0].getsockname()[1]
            url.append(f"http://127.0.0.1:{port}")
            started.set()
            await asyncio.get_running_loop().run_in_executor(None, stop.wait)
            server.should_exit = True
            await task

    asyncio.run(main())


@pytest.fixture
def agent_url(tmp_path: Path) -> Iterator[str]:
    started, stop, url = threading.Event(), threading.Event(), list[str]()
    thread = threading.Thread(target=serve, args=(tmp_path, started, stop, url), daemon=True)
    thread.start()
    try:
        assert started.wait(30), "the agent's HTTP server did not start"
        yield url[0]
    finally:
        stop.set()
        thread.join(30)


def test_schemathesis_finds_nothing(agent_url: str, tmp_path: Path) -> None:
    done = subprocess.run(
        [
            str(ST),
            "run",
            f"{agent_url}/openapi.json",
            "--checks",
            "all",
            "--generation-database",
            "none",
            "--seed",
            "1",
            "--no-color",
        ],
        capture_output=True,
        text=True,
        timeout=240,
        cwd=tmp_path,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-2000:]
