"""How the CLI shows operations: wire JSON, a summary, tables, log lines and the live bar."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from datetime import datetime, timedelta
from typing import Any

from rich.console import Console
from rich.filesize import decimal
from rich.progress import BarColumn, Progress, TextColumn
from rich.table import Table

from longrun.client import OperationTypeInfo
from longrun.model import LogEntry, Operation, Status

__all__ = [
    "LiveBar",
    "Rate",
    "print_json",
    "show_logs",
    "show_operation",
    "show_table",
    "show_types",
]

_STYLE = {
    Status.SUCCEEDED: "green",
    Status.SUCCEEDED_WITH_WARNINGS: "yellow",
    Status.FAILED: "red",
    Status.CANCELED: "magenta",
    Status.MISSED: "red",
}


def print_json(value: Any) -> None:
    """The wire JSON on stdout, indented, nothing else (pipe it to jq)."""
    print(json.dumps(value, indent=2, ensure_ascii=False))


def _when(value: datetime | None) -> str:
    return value.isoformat().replace("+00:00", "Z") if value else "-"


def status_text(operation: Operation) -> str:
    """The status with its colour markup."""
    style = _STYLE.get(operation.status, "cyan")
    return f"[{style}]{operation.status.value}[/{style}]"


def _progress_text(operation: Operation) -> str:
    progress = operation.progress
    parts = [f"{operation.percent_complete:.1f}%"]
    if progress.bytes_total is not None or progress.bytes_done is not None:
        parts.append(f"{decimal(progress.bytes_done or 0)} / {decimal(progress.bytes_total or 0)}")
    if progress.items_total is not None or progress.items_done is not None:
        parts.append(f"{progress.items_done or 0} / {progress.items_total or '?'} items")
    return ", ".join(parts)


def show_operation(console: Console, operation: Operation) -> None:
    """A readable summary of one operation."""
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold")
    table.add_column()
    rows: list[tuple[str, str | None]] = [
        ("id", operation.id),
        ("type", operation.operation_type),
        ("compartment", operation.compartment_id),
        ("status", status_text(operation)),
        ("progress", _progress_text(operation)),
        ("attempt", f"{operation.attempt} of {operation.max_attempts}"),
        ("accepted", _when(operation.time_accepted)),
        ("started", _when(operation.time_started)),
        ("last action", _when(operation.last_action_time)),
        ("finished", _when(operation.time_finished)),
        ("eta", _when(operation.estimated_completion_time) if not operation.is_terminal else None),
        ("location", operation.resource_location),
        ("result", json.dumps(operation.result) if operation.result is not None else None),
    ]
    for name, value in rows:
        if value is not None:
            table.add_row(name, value)
    for error in operation.errors:
        table.add_row("error", f"[red]{error.code}[/red]: {error.message}")
    console.print(table)


def show_table(console: Console, operations: Iterable[Operation]) -> int:
    """A table of operations; returns how many rows it printed."""
    table = Table(box=None, header_style="bold")
    for name in ("ID", "TYPE", "STATUS", "%", "ACCEPTED", "COMPARTMENT"):
        table.add_column(name, no_wrap=True)
    count = 0
    for op in operations:
        table.add_row(
            op.id,
            op.operation_type,
            status_text(op),
            f"{op.percent_complete:.0f}",
            _when(op.time_accepted),
            op.compartment_id,
        )
        count += 1
    console.print(table)
    return count


def show_logs(console: Console, entries: Iterable[LogEntry]) -> None:
    """One line per log entry: time, level, message."""
    for entry in entries:
        console.print(
            f"{_when(entry.timestamp)} {entry.level.value:<7} {entry.message}", markup=False
        )


def show_types(console: Console, types: Iterable[OperationTypeInfo]) -> None:
    """The operation types the server accepts."""
    table = Table(box=None, header_style="bold")
    for name in ("NAME", "MAX ATTEMPTS", "TIMEOUT", "DESCRIPTION"):
        table.add_column(name)
    for info in types:
        timeout = f"{info.timeout:g}s" if info.timeout is not None else "-"
        table.add_row(info.name, str(info.max_attempts), timeout, info.description)
    console.print(table)


class Rate:
    """Bytes per second between two observed states (by their ``last_action_time``)."""

    def __init__(self) -> None:
        self._last: tuple[datetime, int] | None = None
        self.value: float | None = None

    def observe(self, operation: Operation) -> float | None:
        """Update with a new state; returns the latest rate (None until two samples differ)."""
        done = operation.progress.bytes_done
        if done is None:
            return self.value
        now = operation.last_action_time
        if self._last is None:
            self._last = (now, done)
            return self.value
        then, before = self._last
        elapsed = (now - then).total_seconds()
        if elapsed > 0 and done >= before:
            sample = (done - before) / elapsed
            # smooth the jumps between polls: half the newest sample, half the history
            self.value = sample if self.value is None else (sample + self.value) / 2
            self._last = (now, done)
        return self.value


def _eta(operation: Operation, rate: float | None) -> str:
    if operation.is_terminal:
        return "0:00:00"
    left: float | None = None
    if operation.estimated_completion_time is not None:
        left = (operation.estimated_completion_time - operation.last_action_time).total_seconds()
    elif rate and operation.progress.bytes_total is not None:
        left = (operation.progress.bytes_total - (operation.progress.bytes_done or 0)) / rate
    if left is None:
        return "-:--:--"
    return str(timedelta(seconds=max(0, round(left))))


class LiveBar:
    """A rich progress bar fed with successive states: percent, bytes, rate, ETA and status."""

    def __init__(self, console: Console) -> None:
        self._progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(bar_width=30),
            TextColumn("{task.percentage:>5.1f}%"),
            TextColumn("{task.fields[size]}"),
            TextColumn("{task.fields[rate]}"),
            TextColumn("ETA {task.fields[eta]}"),
            TextColumn("{task.fields[status]}"),
            console=console,
            transient=False,
        )
        self._rate = Rate()
        self._task: Any = None

    def follow(self, states: Iterable[Operation]) -> Iterator[Operation]:
        """Show each state as it passes through; yields them on."""
        with self._progress:
            for operation in states:
                self.update(operation)
                yield operation

    def update(self, operation: Operation) -> None:
        """Redraw with one state."""
        rate = self._rate.observe(operation)
        progress = operation.progress
        size = ""
        if progress.bytes_total is not None:
            size = f"{decimal(progress.bytes_done or 0)}/{decimal(progress.bytes_total)}"
        elif progress.items_total is not None:
            size = f"{progress.items_done or 0}/{progress.items_total} items"
        fields: dict[str, Any] = {
            "size": f"{size:>17}",  # fixed widths keep the bar still while the numbers move
            "rate": f"{decimal(int(rate)) + '/s' if rate is not None else '':>10}",
            "eta": _eta(operation, rate),
            "status": status_text(operation),
        }
        if self._task is None:
            self._task = self._progress.add_task(operation.operation_type, total=100.0, **fields)
        self._progress.update(self._task, completed=operation.percent_complete, **fields)
