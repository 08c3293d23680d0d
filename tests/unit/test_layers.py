"""The layers point one way (docs/architecture.md, "Layers"): every `import` in
src/conveyor, at module level or inside a function or `if TYPE_CHECKING:`, is
checked against what its layer may use."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src" / "conveyor"

# The parts of conveyor each layer must not import (a part is a package, like
# `store`, or a top-level module, like `context`).
UPPER = {"app", "api", "engine", "web", "cli", "testing", "sdk", "context", "observability"}
FORBIDDEN: dict[str, set[str]] = {
    # Pure: nothing of conveyor but itself and the clock's helpers.
    "domain": UPPER | {"store", "config"},
    "clock": UPPER | {"store", "config", "domain"},
    "config": UPPER | {"store"},
    # The only place with SQL, below everything that runs it.
    "store": UPPER,
    # What a process sets up (logs, metrics, heartbeats): used by api and engine.
    "observability": UPPER - {"observability"},
    # The application context and service wiring, below both api and engine.
    "context": UPPER - {"context"},
    # api and engine never import each other; both stand below web and cli, and
    # below conveyor.app, which assembles the ASGI app (the API with the web UI).
    "engine": {"app", "api", "web", "cli", "testing", "sdk"},
    "api": {"app", "engine", "web", "cli", "testing", "sdk"},
    "web": {"app", "engine", "cli", "testing", "sdk"},
    # The SDK stands alone: a client of the HTTP API only.
    "sdk": UPPER - {"sdk"} | {"store", "domain", "config", "clock"},
}
# Known exceptions, each with its reason (none today); the test fails when one is
# no longer needed, so this list can only shrink.
ALLOWED: set[tuple[str, str]] = set()


def part_of(module: str) -> str | None:
    """`conveyor.store.runs` -> `store`; None outside conveyor."""
    names = module.split(".")
    return names[1] if names[0] == "conveyor" and len(names) > 1 else None


def imported(path: Path) -> Iterator[str]:
    """Every conveyor module or package the file imports, however deep in the file."""
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module == "conveyor":  # from conveyor import web
                yield from (f"conveyor.{alias.name}" for alias in node.names)
            else:
                yield node.module


def violations() -> tuple[set[str], set[tuple[str, str]]]:
    found, excused = set(), set()
    for path in sorted(SRC.rglob("*.py")):
        relative = path.relative_to(SRC.parent).with_suffix("")
        importer = ".".join(relative.parts).removesuffix(".__init__")
        layer = part_of(importer)
        if layer is None or layer not in FORBIDDEN:
            continue
        for module in imported(path):
            target = part_of(module)
            if target is None or target == layer or target not in FORBIDDEN[layer]:
                continue
            pair = (importer.removeprefix("conveyor."), target)
            if pair in ALLOWED:
                excused.add(pair)
            else:
                found.add(f"{importer} imports {module}")
    return found, excused


def test_layers_point_one_way() -> None:
    found, excused = violations()
    assert found == set()
    assert excused == ALLOWED, "an exception is no longer needed: remove it from ALLOWED"


def test_the_scan_sees_imports_anywhere_in_a_file(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text(
        "from typing import TYPE_CHECKING\n"
        "import conveyor.store.runs\n"
        "from conveyor import web\n"
        "if TYPE_CHECKING:\n    from conveyor.api.context import AppContext\n"
        "def f():\n    from conveyor.engine import service\n"
        "from . import sibling\n"
    )
    assert sorted(imported(module)) == [
        "conveyor.api.context",
        "conveyor.engine",
        "conveyor.store.runs",
        "conveyor.web",
        "typing",
    ]
