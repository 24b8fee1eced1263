"""The client verbs: submit, status, list, cancel, hold, release, delete, logs, watch, types."""

from __future__ import annotations

import itertools
import json
import sys
from pathlib import Path
from typing import Any

import typer

from longrun.cli._app import EXIT_FAILED, app, session, stderr, stdout
from longrun.cli._render import (
    LiveBar,
    print_json,
    show_logs,
    show_operation,
    show_table,
    show_types,
)
from longrun.client import Client
from longrun.model import InvalidInput, Operation, Status

__all__ = ["parse_input"]

_JSON = typer.Option(False, "--json", help="print the wire JSON")
_STATUSES = typer.Option(None, "--status", "-s", help="repeatable")
_TYPES = typer.Option(None, "--type", "-t", help="repeatable")
_COMPARTMENTS = typer.Option(None, "--compartment", "-c", help="repeatable")
_SUCCESS = {Status.SUCCEEDED, Status.SUCCEEDED_WITH_WARNINGS}


def parse_input(text: str | None) -> Any:
    """``--input``: JSON text, ``@file`` or ``@-`` (stdin); InvalidInput when it is not JSON."""
    if text is None:
        return None
    if text.startswith("@"):
        source = text[1:]
        try:
            text = sys.stdin.read() if source == "-" else Path(source).read_text(encoding="utf-8")
        except OSError as exc:
            raise InvalidInput(f"cannot read {source}: {exc.strerror}", target="--input") from None
    try:
        return json.loads(text)
    except ValueError as exc:
        raise InvalidInput(f"--input is not JSON: {exc}", target="--input") from None


def _final(operation: Operation, as_json: bool) -> None:
    """Print the end state and exit 0 on success, 1 otherwise."""
    if as_json:
        print_json(operation.to_dict())
    else:
        print(f"{operation.id} {operation.status.value}")
        for error in operation.errors:
            print(f"{error.code}: {error.message}", file=sys.stderr)
    raise typer.Exit(0 if operation.status in _SUCCESS else EXIT_FAILED)


def _watch(
    client: Client, operation_id: str, interval: float, timeout: float, as_json: bool
) -> None:
    last: Operation | None = None
    states = client.watch(operation_id, interval=interval, timeout=timeout)
    if as_json:
        for last in states:
            print(json.dumps(last.to_dict()), flush=True)
    else:
        for last in LiveBar(stderr()).follow(states):  # noqa: B007
            pass
    if last is not None:
        if as_json:
            raise typer.Exit(0 if last.status in _SUCCESS else EXIT_FAILED)
        _final(last, as_json=False)


@app.command()
def submit(
    ctx: typer.Context,
    operation_type: str = typer.Argument(..., metavar="TYPE", help="e.g. demo.hash"),
    input_text: str | None = typer.Option(None, "--input", "-i", help="JSON, @file or @-"),
    compartment: str | None = typer.Option(None, "--compartment", "-c"),
    idempotency_key: str | None = typer.Option(None, "--idempotency-key"),
    max_attempts: int | None = typer.Option(None, "--max-attempts", min=1),
    wait: bool = typer.Option(False, "--wait", help="block until it is terminal"),
    watch: bool = typer.Option(False, "--watch", help="show a live progress bar until terminal"),
    timeout: float = typer.Option(3600.0, "--timeout", help="bound of --wait/--watch, seconds"),
    as_json: bool = _JSON,
) -> None:
    """Submit an operation; prints its id (or, with --wait/--watch, its end state)."""
    with session(ctx) as client:
        payload = parse_input(input_text)
        operation = client.submit(
            operation_type,
            payload,
            compartment_id=compartment,
            idempotency_key=idempotency_key,
            max_attempts=max_attempts,
        )
        if watch:
            print(operation.id, file=sys.stderr)
            _watch(client, operation.id, 0.5, timeout, as_json)
        elif wait:
            _final(client.wait(operation.id, timeout=timeout), as_json)
        elif as_json:
            print_json(operation.to_dict())
        else:
            print(operation.id)


@app.command()
def status(
    ctx: typer.Context, operation_id: str = typer.Argument(..., metavar="ID"), as_json: bool = _JSON
) -> None:
    """Show where an operation stands."""
    with session(ctx) as client:
        operation = client.get(operation_id)
    if as_json:
        print_json(operation.to_dict())
    else:
        show_operation(stdout(), operation)


@app.command("list")
def list_(
    ctx: typer.Context,
    status: list[str] | None = _STATUSES,
    operation_type: list[str] | None = _TYPES,
    compartment: list[str] | None = _COMPARTMENTS,
    limit: int = typer.Option(50, "--limit", "-n", min=1, help="at most this many"),
    as_json: bool = _JSON,
) -> None:
    """List operations, newest first."""
    with session(ctx) as client:
        found = client.list(
            page_size=min(limit, 1000),
            status=status or None,
            operation_type=operation_type or None,
            compartment_id=compartment or None,
        )
        operations = list(itertools.islice(found, limit))
    if as_json:
        print_json([op.to_dict() for op in operations])
    else:
        show_table(stdout(), operations)


def _transition(ctx: typer.Context, verb: str, operation_id: str, as_json: bool, **kw: Any) -> None:
    with session(ctx) as client:
        operation: Operation = getattr(client, verb)(operation_id, **kw)
    if as_json:
        print_json(operation.to_dict())
    else:
        print(f"{operation.id} {operation.status.value}")


@app.command()
def cancel(
    ctx: typer.Context, operation_id: str = typer.Argument(..., metavar="ID"), as_json: bool = _JSON
) -> None:
    """Cancel an operation (a running one goes CANCELING until its handler stops)."""
    _transition(ctx, "cancel", operation_id, as_json)


@app.command()
def hold(
    ctx: typer.Context,
    operation_id: str = typer.Argument(..., metavar="ID"),
    reason: str | None = typer.Option(None, "--reason", "-r"),
    as_json: bool = _JSON,
) -> None:
    """Keep an ACCEPTED operation from starting."""
    _transition(ctx, "hold", operation_id, as_json, reason=reason)


@app.command()
def release(
    ctx: typer.Context, operation_id: str = typer.Argument(..., metavar="ID"), as_json: bool = _JSON
) -> None:
    """Let an ON_HOLD operation start."""
    _transition(ctx, "release", operation_id, as_json)


@app.command()
def delete(ctx: typer.Context, operation_id: str = typer.Argument(..., metavar="ID")) -> None:
    """Delete a terminal operation."""
    with session(ctx) as client:
        client.delete(operation_id)
    print(f"{operation_id} deleted")


@app.command()
def logs(
    ctx: typer.Context, operation_id: str = typer.Argument(..., metavar="ID"), as_json: bool = _JSON
) -> None:
    """Print the log of an operation."""
    with session(ctx) as client:
        entries = list(client.logs(operation_id))
    if as_json:
        print_json([entry.to_dict() for entry in entries])
    else:
        show_logs(stdout(), entries)


@app.command()
def watch(
    ctx: typer.Context,
    operation_id: str = typer.Argument(..., metavar="ID"),
    interval: float = typer.Option(0.5, "--interval", min=0.05, help="seconds between polls"),
    timeout: float = typer.Option(86400.0, "--timeout", help="give up after this many seconds"),
    as_json: bool = typer.Option(False, "--json", help="print each new state as a JSON line"),
) -> None:
    """A live progress bar until the operation is terminal; exit 0 on success, 1 otherwise."""
    with session(ctx) as client:
        _watch(client, operation_id, interval, timeout, as_json)


@app.command()
def types(ctx: typer.Context, as_json: bool = _JSON) -> None:
    """The operation types the server accepts."""
    with session(ctx) as client:
        found = client.operation_types()
    if as_json:
        print_json({"items": [info.to_dict() for info in found]})
    else:
        show_types(stdout(), found)
