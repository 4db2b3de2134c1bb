"""Pure modules stay pure: they import only pure standard-library modules and each other.

The allocator must be deterministic on every replica (no clock, no randomness, no I/O), and the
agent's desired/plan must be testable without a kernel. A pure module that starts importing
``socket``, ``time``, ``pyroute2``, ``pysyncobj`` or an impure module of ours fails here, whether
the import is at the top or inside a function.
"""

from __future__ import annotations

import ast
import importlib.util
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]

PURE = {
    "overlay_wire.contract",
    "overlay_master.address_spaces",
    "overlay_master.addressing",
    "overlay_master.allocator",
    "overlay_master.commands",
    "overlay_master.dcos_json",
    "overlay_master.drift",
    "overlay_master.errors",
    "overlay_master.lifecycle",
    "overlay_master.network",
    "overlay_master.network_edits",
    "overlay_master.pool",
    "overlay_master.records",
    "overlay_master.reports",
    "overlay_master.validation",
    "overlay_agent.addresses",
    "overlay_agent.cluster",
    "overlay_agent.desired",
    "overlay_agent.docker",
    "overlay_agent.errors",
    "overlay_agent.isolation",
    "overlay_agent.kernel_objects",
    "overlay_agent.observed",
    "overlay_agent.peers",
    "overlay_agent.plan",
}

# Standard-library modules with no I/O, clock or randomness.
PURE_STDLIB = {
    "__future__",
    "abc",
    "bisect",
    "collections",
    "collections.abc",
    "dataclasses",
    "enum",
    "functools",
    "heapq",
    "ipaddress",
    "itertools",
    "json",
    "math",
    "operator",
    "re",
    "types",
    "typing",
}
PACKAGES = ("overlay_master", "overlay_agent", "overlay_wire")


def imports_of(module: str) -> set[str]:
    """Every module ``module`` imports, anywhere in its body, as absolute dotted names."""
    spec = importlib.util.find_spec(module)
    assert spec is not None and spec.origin is not None, module
    tree = ast.parse(Path(spec.origin).read_text(), spec.origin)
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{module}: relative import"
            base = node.module or ""
            found.add(base)
            for alias in node.names:  # ``from pkg import submodule`` imports the submodule
                if base in PACKAGES:
                    found.add(f"{base}.{alias.name}")
    return found


def test_pure_modules_import_only_pure_modules() -> None:
    problems = []
    for module in sorted(PURE):
        for imported in sorted(imports_of(module)):
            if imported in PACKAGES or imported in PURE or imported in PURE_STDLIB:
                continue
            problems.append(f"{module} imports {imported}")
    assert problems == []


def test_the_contract_needs_nothing_but_the_standard_library() -> None:
    assert imports_of("overlay_wire.contract") <= PURE_STDLIB


def test_the_list_of_pure_modules_names_real_modules() -> None:
    for module in PURE:
        assert importlib.util.find_spec(module) is not None, module


def test_the_check_catches_an_impure_import(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The checker itself can fail: a module importing ``time`` inside a function is caught."""
    package = tmp_path / "overlay_probe"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "impure.py").write_text("def now():\n    import time\n    return time.time()\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert "time" in imports_of("overlay_probe.impure")
    assert not imports_of("overlay_probe.impure") <= PURE_STDLIB
