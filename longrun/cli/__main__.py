"""``python -m longrun.cli``."""

from __future__ import annotations

from longrun.cli import main

__all__: list[str] = []

main()
