"""``backup.export`` (an online SQLite backup into a gzip file) and ``import.from_storage``."""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import os
import sqlite3
import time
import zlib
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from longrun.builtin.snapshot import path_lock
from longrun.builtin.snapshot_store import CHUNK
from longrun.engine.registry import App
from longrun.model import OperationError

__all__ = ["ExportInput", "ImportInput", "export_backup", "import_backup", "register_backup"]

_FORMAT = "sqlite3+gzip"
_MAGIC = b"SQLite format 3\x00"


class ExportInput(BaseModel):
    """What ``backup.export`` reads and writes."""

    database: str = Field(min_length=1, description="the SQLite database file to back up")
    file: str = Field(min_length=1, description="the backup file to create (gzip)")
    pages_per_step: int = Field(256, ge=1, le=1 << 20, description="pages copied between checks")
    compress_level: int = Field(6, ge=0, le=9)
    replace: bool = Field(False, description="overwrite an existing backup file")
    throttle_bytes_per_second: int | None = Field(None, ge=1, description="for demos and tests")


class ImportInput(BaseModel):
    """What ``import.from_storage`` reads and writes."""

    file: str = Field(min_length=1, description="a backup file made by backup.export")
    database: str = Field(min_length=1, description="the SQLite database file to create")
    replace: bool = Field(False, description="overwrite an existing database")


def _throttle(ctx: Any, started: float, done: int, rate: int | None) -> None:
    ctx.check_cancelled()
    if rate:
        ahead = done / rate - (time.monotonic() - started)
        if ahead > 0:
            ctx.sleep_sync(ahead)


def _remove(*paths: Path) -> None:
    for path in paths:
        for extra in ("", "-journal", "-wal", "-shm"):
            with contextlib.suppress(FileNotFoundError):
                Path(f"{path}{extra}").unlink()


def _copy_pages(ctx: Any, data: ExportInput, source: Path, temp_db: Path) -> tuple[int, int]:
    """The backup API, page by page; returns (page size, page count)."""
    src = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
    dst = sqlite3.connect(temp_db)
    started = time.monotonic()
    try:
        page_size = src.execute("PRAGMA page_size").fetchone()[0]

        def step(_status: int, remaining: int, total: int) -> None:
            done = (total - remaining) * page_size
            ctx.progress(
                50.0 * (total - remaining) / max(total, 1),
                bytes_done=done,
                bytes_total=total * page_size,
            )
            _throttle(ctx, started, done, data.throttle_bytes_per_second)

        src.backup(dst, pages=data.pages_per_step, progress=step)
        page_count = dst.execute("PRAGMA page_count").fetchone()[0]
    except sqlite3.DatabaseError as exc:
        raise OperationError(
            "InvalidDatabase",
            f"{source} is not a readable SQLite database: {exc}",
            target="input.database",
        ) from None
    finally:
        dst.close()
        src.close()
    return page_size, page_count


def _compress(ctx: Any, temp_db: Path, temp_gz: Path, level: int) -> tuple[str, int]:
    """gzip the copied database; returns (sha256 of the database, bytes written)."""
    size = temp_db.stat().st_size
    hasher = hashlib.sha256()
    done = 0
    with temp_db.open("rb") as src, temp_gz.open("wb") as raw:
        with gzip.GzipFile(filename="", mode="wb", fileobj=raw, compresslevel=level, mtime=0) as gz:
            while chunk := src.read(CHUNK):
                hasher.update(chunk)
                gz.write(chunk)
                done += len(chunk)
                ctx.progress(
                    50.0 + 50.0 * done / max(size, 1), data_transferred_in_bytes=raw.tell()
                )
                ctx.check_cancelled()
        raw.flush()
        os.fsync(raw.fileno())
        return hasher.hexdigest(), raw.tell()


def export_backup(ctx: Any, data: ExportInput) -> dict[str, Any]:
    """Copy the database with SQLite's online backup API, then compress it into place."""
    source = Path(data.database).expanduser().resolve()
    if not source.is_file():
        raise OperationError(
            "DatabaseNotFound", f"no database at {source}", target="input.database"
        )
    final = Path(data.file).expanduser().resolve()
    if final.exists() and not data.replace:
        raise OperationError(
            "FileExists", f"{final} exists; ask to replace it", target="input.file"
        )
    final.parent.mkdir(parents=True, exist_ok=True)
    temp_db = final.parent / f".{final.name}.{ctx.operation_id}.db"
    temp_gz = final.parent / f".{final.name}.{ctx.operation_id}.gz"
    ctx.log(f"backing up {source} to {final}")
    ctx.progress(0.0, object_type="BackupAndExportResponse")
    try:
        page_size, page_count = _copy_pages(ctx, data, source, temp_db)
        digest, written = _compress(ctx, temp_db, temp_gz, data.compress_level)
        os.replace(temp_gz, final)
    finally:
        _remove(temp_db, temp_gz)
    size = page_size * page_count
    metadata = {
        "format": _FORMAT,
        "page_size": str(page_size),
        "page_count": str(page_count),
        "sha256": digest,
        "sqlite_version": sqlite3.sqlite_version,
        "source_database": str(source),
    }
    ctx.progress(
        100.0,
        bytes_done=size,
        bytes_total=size,
        backup_metadata=metadata,
        data_transferred_in_bytes=written,
        datasource_size_in_bytes=size,
        object_type="BackupAndExportResponse",
    )
    ctx.add_resource("file", "CREATED", str(final), entity_uri=final.as_uri())
    ctx.set_resource_location(str(final))
    ctx.log(f"backup of {size} bytes written as {written} compressed bytes")
    return {"file": str(final), "backup_metadata": metadata, "compressed_size": written}


def _corrupt(file: Path, why: object) -> OperationError:
    return OperationError(
        "CorruptBackup",
        f"the backup file {file} is corrupt or truncated: {why}",
        target="input.file",
    )


def _decompress(ctx: Any, file: Path, temp: Path) -> str:
    size = file.stat().st_size
    hasher = hashlib.sha256()
    with file.open("rb") as raw, temp.open("wb") as dst:
        try:
            with gzip.GzipFile(fileobj=raw, mode="rb") as gz:
                while chunk := gz.read(CHUNK):
                    hasher.update(chunk)
                    dst.write(chunk)
                    ctx.progress(bytes_done=raw.tell(), bytes_total=size)
                    ctx.check_cancelled()
        except (OSError, EOFError, zlib.error) as exc:
            raise _corrupt(file, exc) from None
    return hasher.hexdigest()


def _verify(file: Path, temp: Path) -> None:
    with temp.open("rb") as handle:
        if handle.read(len(_MAGIC)) != _MAGIC:
            raise _corrupt(file, "it does not hold a SQLite database")
    conn = sqlite3.connect(temp)
    try:
        rows = conn.execute("PRAGMA integrity_check").fetchall()
    except sqlite3.DatabaseError as exc:
        raise _corrupt(file, exc) from None
    finally:
        conn.close()
    if rows != [("ok",)]:
        raise _corrupt(file, "; ".join(str(r[0]) for r in rows[:5]))


def import_backup(ctx: Any, data: ImportInput) -> dict[str, Any]:
    """Decompress next to the target, check integrity, then move the database into place."""
    file = Path(data.file).expanduser().resolve()
    if not file.is_file():
        raise OperationError("BackupNotFound", f"no backup file at {file}", target="input.file")
    final = Path(data.database).expanduser().resolve()
    if final.exists() and not data.replace:
        raise OperationError(
            "DatabaseExists", f"{final} exists; ask to replace it", target="input.database"
        )
    final.parent.mkdir(parents=True, exist_ok=True)
    temp = final.parent / f".{final.name}.import-{ctx.operation_id}"
    ctx.progress(0.0, object_type="ImportFromStorageResponse")
    ctx.log(f"importing {file} into {final}")
    try:
        digest = _decompress(ctx, file, temp)
        _verify(file, temp)
        os.replace(temp, final)
    finally:
        _remove(temp)
    size = final.stat().st_size
    ctx.progress(
        100.0,
        datasource_size_in_bytes=size,
        data_transferred_in_bytes=file.stat().st_size,
        object_type="ImportFromStorageResponse",
    )
    ctx.add_resource("database", "CREATED", str(final), entity_uri=final.as_uri())
    ctx.set_resource_location(str(final))
    return {"database": str(final), "sha256": digest, "size": size}


def register_backup(app: App) -> None:
    """Register ``backup.export`` and ``import.from_storage`` on ``app``."""
    app.operation(
        "backup.export",
        input=ExportInput,
        max_attempts=2,
        locks=lambda data: [path_lock(data.file)],
    )(export_backup)
    app.operation(
        "import.from_storage",
        input=ImportInput,
        max_attempts=2,
        locks=lambda data: [path_lock(data.database)],
    )(import_backup)
