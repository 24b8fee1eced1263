"""The arrows of DESIGN.md, checked on the imports of every module: no layer imports one above."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2] / "longrun"

# layer -> the longrun layers it may import (itself included)
ALLOWED: dict[str, set[str]] = {
    "model": {"model"},
    "config": set(),
    "store": {"store", "model"},
    "engine": {"engine", "store", "model"},
    "builtin": {"builtin", "engine", "model"},
    "bootstrap": {"config", "engine", "store", "model", "builtin"},
    "testing": {"engine", "store", "model"},
    "pagination": {"model", "store"},
    "service": {"service", "pagination", "engine", "store", "model"},
    # auth: credentials (keys in the store, JWTs by config) and roles; api and cli use it
    "auth": {"auth", "store", "model", "config"},
    "api": {
        "api", "auth", "bootstrap", "service", "pagination", "engine", "store", "model", "config"
    },
    "client": {"client", "model"},
    "cli": {"cli", "client", "api", "auth", "bootstrap", "store", "model", "config"},
}


def _layer(path: Path) -> str:
    return path.relative_to(ROOT).parts[0].removesuffix(".py")


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        names = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        found.update(
            n.split(".")[1] for n in names if n.startswith("longrun.") and n.count(".") >= 1
        )
    return found


MODULES = sorted(p for p in ROOT.rglob("*.py") if p.parent != ROOT or p.name != "__init__.py")


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(ROOT)))
def test_module_imports_only_layers_below(path: Path) -> None:
    layer = _layer(path)
    assert layer in ALLOWED, f"{layer} is a new layer: place it in DESIGN.md and in ALLOWED"
    wrong = _imports(path) - ALLOWED[layer] - {layer}
    assert not wrong, f"{path.relative_to(ROOT)} ({layer}) imports {sorted(wrong)}"
