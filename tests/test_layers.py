"""The import-layer contract of ARCHITECTURE.md, checked on the source."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "src" / "fusionaudio"

# layer -> layers it may import (besides itself)
ALLOWED: dict[str, set[str]] = {
    "schema": set(),
    "store": {"schema"},
    "media": set(),
    "backends": {"media"},
    "clap": {"backends", "media"},
    "stages": {"clap", "backends", "media", "schema"},
    "engine": set(),
    "pipeline": {"engine", "stages", "backends", "media", "store", "schema", "config", "version"},
    "config": {"stages"},
    "dataset": {"media", "store", "schema"},
    "report": {"dataset", "stages", "media", "store", "schema"},
    "training": {"clap", "backends", "media", "store", "schema"},
}
TOP_LEVEL_LIBRARY = {"__init__": "version", "config": "config"}


def _layer(path: Path) -> str | None:
    rel = path.relative_to(PACKAGE)
    if len(rel.parts) > 1:
        return rel.parts[0]
    return TOP_LEVEL_LIBRARY.get(rel.stem)


def _imported_layers(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        for name in names:
            parts = name.split(".")
            if parts[0] == "fusionaudio":
                found.add("version" if len(parts) == 1 else parts[1])
    return found


def test_layers_import_only_downwards() -> None:
    problems = []
    for path in PACKAGE.rglob("*.py"):
        layer = _layer(path)
        if layer is None or layer not in ALLOWED:
            continue
        for imported in _imported_layers(path) - {layer}:
            if imported not in ALLOWED[layer]:
                problems.append(f"{path.relative_to(PACKAGE)} imports {imported}")
    assert problems == []


def test_no_heavy_or_forbidden_imports_where_they_do_not_belong() -> None:
    for path in PACKAGE.rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        rel = path.relative_to(PACKAGE)
        if rel.parts[0] != "engine":
            assert "import ray" not in text, rel
        if rel.parts[0] == "schema":
            assert "numpy" not in text and "torch" not in text, rel
        assert "getattr(args" not in text and "pip install" not in text.replace(
            "install it with: pip install", ""
        ), rel
