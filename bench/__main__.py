"""``python -m bench [--quick] [--output FILE] [--json FILE] [--only NAME,...]``

Runs every benchmark in order, prints the table and (full mode, or with ``--output``) writes
``BENCHMARKS.md``. Quick mode uses small sizes and takes a minute or two; CI runs it
(``tests/integration/test_bench_quick.py``) so the suite cannot rot. The full mode takes under 15
minutes. Every child process is ended by PID when the run ends, however it ends.
"""

from __future__ import annotations

import argparse
import atexit
import datetime
import json
import os
import signal
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from types import FrameType, ModuleType

from bench import (
    allocator_bench,
    convergence,
    failover,
    footprint,
    live,
    processes,
    scale,
    state_endpoint,
    throughput,
)
from bench.context import FULL, QUICK, Context
from bench.report import Row, commit, markdown, text_table

HERE = Path(__file__).resolve().parent
# In run order: throughput starts and fills the main cluster that convergence, state and
# footprint reuse (footprint last: it restarts the cluster). A new benchmark is one more entry:
# a module with ``run(ctx) -> list[Row]`` (and a docstring, which the report prints).
BENCHMARKS: dict[str, ModuleType] = {
    "allocator": allocator_bench,
    "failover": failover,
    "throughput": throughput,
    "convergence": convergence,
    "state": state_endpoint,
    "live": live,
    "footprint": footprint,
    "scale": scale,
}


def agent_benchmarks() -> list[str]:
    """``bench/agent_*.py``, written by the agent's engineer: each has ``run(quick) -> rows``."""
    return sorted(p.stem for p in HERE.glob("agent_*.py"))


AGENT_CALL = (
    "import json, sys; from importlib import import_module; "
    "rows = import_module('bench.' + sys.argv[1]).run(sys.argv[2] == 'quick'); "
    "print(json.dumps([r if isinstance(r, dict) else r.plain() for r in rows]))"
)


def run_agent(stem: str, quick: bool) -> list[Row]:
    """An agent benchmark in a fresh interpreter: ``import pysyncobj`` (done by the master's
    benchmarks) patches pickle's loader, which breaks pyroute2's namespace-helper replies."""
    argv = [sys.executable, "-c", AGENT_CALL, stem, "quick" if quick else "full"]
    out = processes.output(argv, 900, stem)
    return [Row.from_any(r) for r in json.loads(out.decode().strip().splitlines()[-1])]


def run_one(name: str, call: Callable[[], list[Row]]) -> list[Row]:
    started = time.monotonic()
    print(f"bench: {name} ...", file=sys.stderr, flush=True)
    try:
        rows = [Row.from_any(r) for r in call()]
    except Exception as e:  # noqa: BLE001 -- one failed benchmark must not hide the others
        traceback.print_exc()
        rows = [
            Row(
                f"error.{name}",
                f"{name}: FAILED",
                f"{type(e).__name__}: {e}",
                target="runs to completion",
                met=False,
            )
        ]
    print(f"bench: {name} done in {time.monotonic() - started:.1f} s", file=sys.stderr, flush=True)
    return rows


def methodology() -> str:
    parts = ["## How each figure is measured", ""]
    for module in BENCHMARKS.values():
        doc = (module.__doc__ or "").strip()
        parts += [f"### `{module.__name__}`", "", doc, ""]
    parts += [
        "### Agent benchmarks",
        "",
        "The runner runs every `bench/agent_*.py` (written with the agent) in a fresh "
        "interpreter (importing pysyncobj patches pickle's loader, which breaks pyroute2's "
        "namespace helper) and appends the rows its `run(quick)` returns. Present in this run: "
        + (", ".join(f"`{n}`" for n in agent_benchmarks()) or "none")
        + ".",
    ]
    return "\n".join(parts)


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    p.add_argument("--quick", action="store_true", help="small sizes (CI)")
    p.add_argument("--output", help="Markdown report (default: BENCHMARKS.md in full mode)")
    p.add_argument("--json", help="also write the rows as JSON here")
    p.add_argument("--only", help=f"comma-separated subset of: {', '.join(BENCHMARKS)}, agent")
    args = p.parse_args(argv)
    output = args.output or (None if args.quick else "BENCHMARKS.md")
    only = set(args.only.split(",")) if args.only else None

    def on_term(signum: int, frame: FrameType | None) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, on_term)
    atexit.register(processes.stop_all)
    processes.raise_open_files()
    started_at = datetime.datetime.now(datetime.UTC)
    started = time.monotonic()
    load_before = os.getloadavg()[0]
    measured = commit(HERE.parent)
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="overlay-bench-") as workdir:
        ctx = Context(args.quick, Path(workdir), QUICK if args.quick else FULL)
        try:
            for name, module in BENCHMARKS.items():
                if only is None or name in only:
                    rows += run_one(name, lambda module=module: module.run(ctx))
            if only is None or "agent" in only:
                for stem in agent_benchmarks():
                    rows += run_one(stem, lambda stem=stem: run_agent(stem, args.quick))
        finally:
            if ctx.main is not None:
                ctx.main.stop_all()
            processes.stop_all()
    elapsed = time.monotonic() - started
    print(text_table(rows))
    print(f"\n{len(rows)} rows in {elapsed / 60:.1f} min", file=sys.stderr)
    if args.json:
        Path(args.json).write_text(json.dumps([r.plain() for r in rows], indent=1))
    if output:
        findings = (HERE / "findings.md").read_text() if (HERE / "findings.md").exists() else ""
        load = f"{load_before:.1f} at the start, {os.getloadavg()[0]:.1f} at the end"
        text = markdown(rows, argv, started_at, elapsed, methodology(), findings, measured, load)
        Path(output).write_text(text)
        print(f"wrote {output}", file=sys.stderr)
    return 1 if any(r.key.startswith("error.") for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
