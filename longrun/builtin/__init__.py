"""The operation types that ship with longrun; ``default_app(settings)`` is what serve loads."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from longrun.builtin import demo
from longrun.builtin.compartment import register_compartment
from longrun.builtin.copy import register_copy
from longrun.builtin.snapshot import register_snapshot
from longrun.builtin.snapshot_apply import register_apply
from longrun.builtin.snapshot_store import SnapshotStore
from longrun.builtin.sqlite_backup import register_backup
from longrun.engine.registry import App

__all__ = ["DEFAULT_DATA_DIR", "default_app"]

DEFAULT_DATA_DIR = "./longrun-data"


def default_app(settings: Any = None) -> App:
    """A fresh App holding every built-in operation type.

    ``settings`` is anything with a ``data_dir`` (longrun.config.Settings); the snapshot store
    lives in ``<data_dir>/snapshots``. Without it: ``$LONGRUN_DATA_DIR`` or ``./longrun-data``.
    """
    data_dir = getattr(settings, "data_dir", None) or os.environ.get(
        "LONGRUN_DATA_DIR", DEFAULT_DATA_DIR
    )
    snapshots = SnapshotStore(Path(data_dir) / "snapshots")
    app = App()
    app.include(demo.app)
    register_snapshot(app, snapshots)
    register_apply(app, snapshots)
    register_copy(app, snapshots)
    register_backup(app)
    register_compartment(app, snapshots)
    return app
