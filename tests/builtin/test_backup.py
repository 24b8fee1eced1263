"""backup.export and import.from_storage on generated SQLite databases."""

from __future__ import annotations

import gzip
import sqlite3
import threading
from pathlib import Path
from typing import Any

from longrun.engine.registry import App
from longrun.model import Status
from longrun.testing import run_handler
from tests.builtin.conftest import dump, make_db


def _export(app: App, db: Path, file: Path, **more: Any) -> Any:
    return run_handler(app.get("backup.export"), {"database": str(db), "file": str(file), **more})


def _import(app: App, file: Path, db: Path) -> Any:
    return run_handler(app.get("import.from_storage"), {"file": str(file), "database": str(db)})


def test_export_then_import_gives_an_identical_database(builtin_app: App, tmp_path: Path) -> None:
    db = make_db(tmp_path / "source.db")
    file = tmp_path / "backups" / "source.db.gz"
    exported = _export(builtin_app, db, file, pages_per_step=8)
    assert exported.status is Status.SUCCEEDED, exported.errors
    props = exported.progress.properties
    assert props["object_type"] == "BackupAndExportResponse"
    assert props["datasource_size_in_bytes"] == db.stat().st_size
    assert props["data_transferred_in_bytes"] == file.stat().st_size
    assert props["backup_metadata"]["format"] == "sqlite3+gzip"
    assert len(exported.progress_calls) > 10  # page by page
    assert exported.resource_location == str(file)
    restored = tmp_path / "restored.db"
    imported = _import(builtin_app, file, restored)
    assert imported.status is Status.SUCCEEDED, imported.errors
    assert imported.progress.properties["object_type"] == "ImportFromStorageResponse"
    assert imported.result["sha256"] == props["backup_metadata"]["sha256"]
    assert dump(restored) == dump(db)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["backups", "restored.db", "source.db"]


def test_the_database_stays_usable_during_the_export(builtin_app: App, tmp_path: Path) -> None:
    db = make_db(tmp_path / "source.db", rows=5000)
    wrote = threading.Event()

    def write() -> None:
        conn = sqlite3.connect(db, timeout=5)
        with conn:
            conn.execute("INSERT INTO meta VALUES ('during', 'yes')")
        conn.close()
        wrote.set()

    writer = threading.Thread(target=write)
    writer.start()
    exported = _export(builtin_app, db, tmp_path / "b.gz", pages_per_step=4)
    writer.join(10)
    assert wrote.is_set()
    assert exported.status is Status.SUCCEEDED


def test_a_truncated_backup_fails_and_leaves_nothing(builtin_app: App, tmp_path: Path) -> None:
    file = tmp_path / "b.gz"
    assert _export(builtin_app, make_db(tmp_path / "s.db"), file).status is Status.SUCCEEDED
    data = file.read_bytes()
    file.write_bytes(data[: len(data) // 2])
    run = _import(builtin_app, file, tmp_path / "out.db")
    assert run.status is Status.FAILED
    assert run.errors[-1].code == "CorruptBackup" and str(file) in run.errors[-1].message
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b.gz", "s.db"]


def test_a_corrupt_database_inside_the_backup_fails(builtin_app: App, tmp_path: Path) -> None:
    raw = bytearray((make_db(tmp_path / "s.db")).read_bytes())
    raw[4096 * 2 : 4096 * 2 + 500] = b"\xff" * 500  # scribble over a b-tree page
    file = tmp_path / "bad.gz"
    file.write_bytes(gzip.compress(bytes(raw)))
    run = _import(builtin_app, file, tmp_path / "out.db")
    assert run.status is Status.FAILED and run.errors[-1].code == "CorruptBackup"
    assert not (tmp_path / "out.db").exists()
    not_gzip = tmp_path / "plain.gz"
    not_gzip.write_bytes(b"not a backup at all")
    run = _import(builtin_app, not_gzip, tmp_path / "out.db")
    assert run.status is Status.FAILED and run.errors[-1].code == "CorruptBackup"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.gz", "plain.gz", "s.db"]


def test_import_refuses_to_overwrite(builtin_app: App, tmp_path: Path) -> None:
    db = make_db(tmp_path / "s.db")
    file = tmp_path / "b.gz"
    assert _export(builtin_app, db, file).status is Status.SUCCEEDED
    run = _import(builtin_app, file, db)
    assert run.status is Status.FAILED and run.errors[-1].code == "DatabaseExists"


def test_a_canceled_export_leaves_nothing(builtin_app: App, tmp_path: Path) -> None:
    db = make_db(tmp_path / "s.db", rows=5000)
    run = run_handler(
        builtin_app.get("backup.export"),
        {"database": str(db), "file": str(tmp_path / "b.gz"), "pages_per_step": 2},
        cancel_after_progress=4,
    )
    assert run.status is Status.CANCELED
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.db"]
