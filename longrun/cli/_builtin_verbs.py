"""One verb per built-in operation (snapshot, backup, compartment); each prints the operation id."""

from __future__ import annotations

import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import typer

from longrun.cli._app import app, session, stdout
from longrun.cli._render import print_json
from longrun.cli._verbs import _watch

__all__ = ["backup_app", "compartment_app", "snapshot_app"]

snapshot_app = typer.Typer(help="Take, apply, copy and list snapshots.", no_args_is_help=True)
backup_app = typer.Typer(help="Back up and import SQLite databases.", no_args_is_help=True)
compartment_app = typer.Typer(help="Act on a whole compartment.", no_args_is_help=True)
app.add_typer(snapshot_app, name="snapshot")
app.add_typer(backup_app, name="backup")
app.add_typer(compartment_app, name="compartment")

_WATCH = typer.Option(False, "--watch", help="show a live progress bar until it ends")
_COMPARTMENT = typer.Option(None, "--compartment", "-c")
_IDS = typer.Argument(..., metavar="ID...")
_DONE = ["SUCCEEDED", "SUCCEEDED_WITH_WARNINGS"]


def _iso(value: datetime | None) -> str:
    return "-" if value is None else value.strftime("%Y-%m-%dT%H:%M:%SZ")


def _path(value: str) -> str:
    """Absolute, so that a worker with another working directory finds the same file."""
    return str(Path(value).expanduser().resolve())


def _run(
    ctx: typer.Context,
    operation_type: str,
    payload: dict[str, Any],
    watch: bool,
    compartment: str | None = None,
) -> None:
    with session(ctx) as client:
        operation = client.submit(operation_type, payload, compartment_id=compartment)
        if not watch:
            print(operation.id)
            return
        print(operation.id, file=sys.stderr)
        _watch(client, operation.id, 0.5, 86400.0, as_json=False)


@snapshot_app.command("take")
def take(
    ctx: typer.Context,
    path: str = typer.Argument(..., help="a directory or a file"),
    watch: bool = _WATCH,
    compartment: str | None = _COMPARTMENT,
) -> None:
    """Take a snapshot of PATH; the snapshot id is the operation's resource location."""
    _run(ctx, "snapshot.take", {"source": _path(path)}, watch, compartment)


@snapshot_app.command("apply")
def apply(
    ctx: typer.Context,
    snapshot_id: str = typer.Argument(..., metavar="ID"),
    target: str = typer.Argument(..., help="the directory to create (or replace)"),
    replace: bool = typer.Option(False, "--replace", help="replace a non-empty target"),
    watch: bool = _WATCH,
    compartment: str | None = _COMPARTMENT,
) -> None:
    """Apply snapshot ID to TARGET, atomically."""
    payload = {"snapshot_id": snapshot_id, "target": _path(target), "replace": replace}
    _run(ctx, "snapshot.apply", payload, watch, compartment)


@snapshot_app.command("copy")
def copy(
    ctx: typer.Context,
    snapshot_ids: list[str] = _IDS,
    to: str = typer.Option(..., "--to", help="the root of the target snapshot store"),
    watch: bool = _WATCH,
    compartment: str | None = _COMPARTMENT,
) -> None:
    """Copy snapshots to another snapshot store, moving only what it lacks."""
    payload = {"snapshot_ids": snapshot_ids, "target": _path(to)}
    _run(ctx, "snapshot.copy", payload, watch, compartment)


@snapshot_app.command("list")
def list_(
    ctx: typer.Context,
    compartment: str | None = _COMPARTMENT,
    as_json: bool = typer.Option(False, "--json", help="one JSON array, for scripts"),
) -> None:
    """The snapshots the server's takes made, less those a compartment delete removed."""
    compartments = [compartment] if compartment else None
    with session(ctx) as client:
        deleted = {
            resource.identifier
            for op in client.list(
                operation_type=["compartment.delete"], status=_DONE, compartment_id=compartments
            )
            for resource in op.resources
            if resource.entity_type == "snapshot" and resource.action_type.value == "DELETED"
        }
        takes = client.list(
            operation_type=["snapshot.take"], status=_DONE, compartment_id=compartments
        )
        found = [op for op in takes if op.resource_location and op.resource_location not in deleted]
    rows = [
        {
            "id": op.resource_location,
            "time_finished": _iso(op.time_finished),
            "compartment_id": op.compartment_id,
            "files": (op.result or {}).get("files"),
            "bytes": (op.result or {}).get("bytes"),
            "source": op.input.get("source"),
            "operation_id": op.id,
        }
        for op in reversed(found)  # oldest first
    ]
    if as_json:
        print_json(rows)
        return
    out = stdout()
    for row in rows:
        out.print(
            f"{row['id']}  {row['time_finished']}  {row['compartment_id']}"
            f"  {_or(row['files'])} files  {_or(row['bytes'])} bytes  {row['source'] or ''}"
        )


def _or(value: Any) -> Any:
    return "?" if value is None else value


@backup_app.command("export")
def export(
    ctx: typer.Context,
    db: str = typer.Argument(..., metavar="DB"),
    file: str = typer.Argument(..., metavar="FILE"),
    watch: bool = _WATCH,
    compartment: str | None = _COMPARTMENT,
) -> None:
    """Back up the SQLite database DB (online) into the compressed FILE."""
    _run(ctx, "backup.export", {"database": _path(db), "file": _path(file)}, watch, compartment)


@backup_app.command("import")
def import_(
    ctx: typer.Context,
    file: str = typer.Argument(..., metavar="FILE"),
    db: str = typer.Argument(..., metavar="DB"),
    watch: bool = _WATCH,
    compartment: str | None = _COMPARTMENT,
) -> None:
    """Restore the backup FILE into a new SQLite database DB, verified first."""
    payload = {"file": _path(file), "database": _path(db)}
    _run(ctx, "import.from_storage", payload, watch, compartment)


@compartment_app.command("delete")
def delete(
    ctx: typer.Context, name: str = typer.Argument(..., metavar="NAME"), watch: bool = _WATCH
) -> None:
    """Delete every snapshot of compartment NAME and purge its ended operations."""
    _run(ctx, "compartment.delete", {"compartment_id": name}, watch, compartment=name)
