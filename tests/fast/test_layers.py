"""The imports between layers are the ones docs/ARCHITECTURE.md describes (its "Imports as they are" table)."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src" / "tapescribe"

# layer -> the tapescribe modules it may import (a top-level package or module name, or a dotted module)
ALLOWED = {
    "engine": {"engine", "errors", "process_env"},
    "sessions": {"sessions", "engine", "errors"},
    "jobs": {"jobs", "engine", "sessions", "errors", "config"},
    "live": {"live", "engine", "sessions", "errors", "jobs.scheduler", "jobs.routing", "jobs.pipeline"},
}
# the single places the table names for an import of config below api/
CONFIG_IMPORTERS = {"jobs/queue.py"}
WEB_FRAMEWORKS = ("fastapi", "starlette")


def imports_of(path: Path) -> list[str]:
    names = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
        elif isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
    return names


def test_each_layer_imports_only_what_the_architecture_says() -> None:
    wrong = []
    for layer, allowed in ALLOWED.items():
        for path in sorted((SRC / layer).rglob("*.py")):
            relative = path.relative_to(SRC).as_posix()
            for name in imports_of(path):
                if not name.startswith("tapescribe."):
                    continue
                target = name.removeprefix("tapescribe.")
                top = target.split(".")[0]
                ok = top in allowed or any(target.startswith(a + ".") or target == a for a in allowed if "." in a)
                if top == "config" and relative not in CONFIG_IMPORTERS:
                    ok = False
                if not ok:
                    wrong.append(f"{relative} imports {name}")
    assert wrong == []


def test_nothing_below_api_imports_the_web_framework() -> None:
    wrong = [
        f"{path.relative_to(SRC)} imports {name}"
        for layer in ALLOWED
        for path in (SRC / layer).rglob("*.py")
        for name in imports_of(path)
        if name.split(".")[0] in WEB_FRAMEWORKS
    ]
    assert wrong == []


def test_only_the_adapter_imports_faster_whisper() -> None:
    """engine/whisper_adapter.py is the one module that reaches into faster-whisper (ARCHITECTURE.md)."""
    importers = {
        path.relative_to(SRC).as_posix()
        for path in SRC.rglob("*.py")
        for name in imports_of(path)
        if name.split(".")[0] == "faster_whisper"
    }
    assert importers == {"engine/whisper_adapter.py"}
