"""One row of the results table, the machine it ran on, and the Markdown report.

A ``Row`` is plain text on purpose: each benchmark decides how to say its result (a median with
its spread, p50/p99, a rate), and the report only lays rows out. ``key`` is stable across quick
and full mode (the sizes are in ``benchmark``), so a test can check that every row was produced.
Every row states its target, or why it has none (``target`` starting with "none: "); a row with
a target has a verdict.
"""

from __future__ import annotations

import datetime
import os
import platform
import shlex
import subprocess
import sys
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

NO_TARGET = "none: "


@dataclass
class Row:
    key: str  # stable identifier, e.g. "failover"
    benchmark: str  # what was measured, with the sizes, e.g. "failover, 20 trials"
    result: str  # e.g. "median 0.81 s, max 1.32 s"
    baseline: str = ""  # the same figure for the baseline, measured in the same run
    ratio: str = ""  # result against baseline, e.g. "0.46x" or "+0.12 s"
    target: str = ""  # the goal, or "none: " and why there is none
    met: bool | None = None  # None: no target
    notes: str = ""

    def __post_init__(self) -> None:
        if not self.target:
            raise ValueError(f"row {self.key!r} names no target (give one, or say why none)")
        if (self.met is None) != self.target.startswith(NO_TARGET):
            raise ValueError(f"row {self.key!r}: a target needs a verdict, and only a target")

    @property
    def verdict(self) -> str:
        return {True: "met", False: "MISSED", None: ""}[self.met]

    @classmethod
    def from_any(cls, value: Row | Mapping[str, Any]) -> Row:
        if isinstance(value, Row):
            return value
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in value.items() if k in names})

    def plain(self) -> dict[str, Any]:
        return {**asdict(self), "verdict": self.verdict}


def machine() -> dict[str, str]:
    """Cores, memory, kernel and Python, as the report header states them."""
    memory = "unknown"
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                memory = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    except OSError:
        pass
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cores": str(os.cpu_count()),
        "cpu": cpu,
        "memory": memory,
        "kernel": platform.release(),
        "python": platform.python_version(),
    }


COLUMNS = ("benchmark", "result", "baseline", "ratio", "target", "verdict")
HEADINGS = ("Benchmark", "Result", "Baseline (same run)", "Ratio", "Target", "")


def text_table(rows: Iterable[Row]) -> str:
    lines = [HEADINGS] + [tuple(str(row.plain()[c]) for c in COLUMNS) for row in rows]
    widths = [max(len(line[i]) for line in lines) for i in range(len(COLUMNS))]
    out = []
    for n, line in enumerate(lines):
        out.append("  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip())
        if n == 0:
            out.append("  ".join("-" * w for w in widths))
    return "\n".join(out)


def markdown_table(rows: Iterable[Row]) -> str:
    def cell(text: str) -> str:
        return text.replace("|", "\\|")

    out = ["| " + " | ".join(HEADINGS) + " |", "|" + "---|" * len(COLUMNS)]
    out += ["| " + " | ".join(cell(str(row.plain()[c])) for c in COLUMNS) + " |" for row in rows]
    return "\n".join(out)


def commit(root: Path) -> str:
    """The commit measured: short hash and subject, and whether the tree had other changes."""
    try:
        head = subprocess.run(
            ["git", "log", "-1", "--format=%h %s"],
            cwd=root,
            capture_output=True,
            text=True,
            check=False,
        ).stdout.strip()
        changed = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=root,
            capture_output=True,
            text=True,
            check=False,
        ).stdout.splitlines()
    except OSError:
        return "unknown (git not available)"
    others = [line for line in changed if not line.endswith("BENCHMARKS.md")]
    return f"`{head}`" + (" plus uncommitted changes" if others else "")


def command_line(argv: list[str]) -> str:
    return shlex.join([".venv/bin/python", "-m", "bench", *argv])


def markdown(
    rows: list[Row],
    argv: list[str],
    started: datetime.datetime,
    elapsed: float,
    methodology: str,
    findings: str,
    measured: str,
    load: str,
) -> str:
    facts = machine()
    notes = [f"- **{row.benchmark}**: {row.notes}" for row in rows if row.notes]
    return "\n".join(
        [
            "# Benchmarks",
            "",
            "Generated by the command below; do not edit by hand (the analysis section comes "
            "from `bench/findings.md`).",
            "",
            f"- Command: `{command_line(argv)}` (from the repository root)",
            f"- Commit measured: {measured}",
            f"- Date: {started.strftime('%Y-%m-%d %H:%M UTC')}; the run took {elapsed / 60:.1f} min; "
            f"load average (1 min) {load}",
            f"- Machine: {facts['cores']} cores ({facts['cpu']}), {facts['memory']} memory, "
            f"Linux {facts['kernel']}, Python {facts['python']} ({sys.implementation.name})",
            "",
            "## Results",
            "",
            f"{sum(r.met is True for r in rows)} targets met, {sum(r.met is False for r in rows)} "
            f"MISSED, {sum(r.met is None for r in rows)} rows without a target (each says why).",
            "",
            markdown_table(rows),
            "",
            "## Notes per row",
            "",
            *notes,
            "",
            methodology.strip(),
            "",
            findings.strip(),
            "",
        ]
    )
