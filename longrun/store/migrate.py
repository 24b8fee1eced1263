"""Versioned migrations: numbered SQL files per engine, applied in order, recorded in a table."""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources

__all__ = ["Migration", "load_migrations", "split_statements"]

_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


@dataclass(frozen=True)
class Migration:
    """One numbered SQL file."""

    version: int
    name: str
    sql: str


def load_migrations(engine: str) -> list[Migration]:
    """Every migration of ``engine`` (``sqlite`` or ``postgres``), in version order."""
    folder = resources.files("longrun.store").joinpath("migrations", engine)
    found = []
    for entry in folder.iterdir():
        match = _NAME.match(entry.name)
        if match:
            found.append(Migration(int(match[1]), match[2], entry.read_text(encoding="utf-8")))
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if versions != list(range(1, len(found) + 1)):
        raise RuntimeError(f"{engine} migrations are not numbered 1..n: {versions}")
    return found


def split_statements(sql: str) -> list[str]:
    """The statements of a script (semicolon-terminated; no semicolons inside literals)."""
    lines = [line for line in sql.splitlines() if not line.lstrip().startswith("--")]
    return [s.strip() for s in "\n".join(lines).split(";") if s.strip()]
