"""The typer app every verb registers on, the global ``--url`` and the shared client session."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import typer
from rich.console import Console

from longrun.client import DEFAULT_URL, Client, Unreachable
from longrun.model import LongrunError

__all__ = ["EXIT_FAILED", "EXIT_REFUSED", "EXIT_UNREACHABLE", "State", "app", "errors", "session"]

EXIT_FAILED = 1  # the operation did not succeed, or the server failed
EXIT_REFUSED = 2  # the server refused the request (a 4xx)
EXIT_UNREACHABLE = 3  # no server answered

app = typer.Typer(
    name="longrun",
    help="Run long-running operations and see where each one stands.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@dataclass
class State:
    """What the global options set, handed to every verb through typer's context."""

    url: str = DEFAULT_URL
    timeout: float = 30.0
    token: str | None = None  # sent as Authorization: Bearer; never printed


@app.callback()
def _global(
    ctx: typer.Context,
    url: str = typer.Option(
        DEFAULT_URL, "--url", envvar="LONGRUN_URL", help="the longrun server", show_default=True
    ),
    timeout: float = typer.Option(30.0, "--http-timeout", min=0.1, help="seconds per request"),
    token: str | None = typer.Option(
        None, "--token", envvar="LONGRUN_TOKEN", help="API key or JWT", show_default=False
    ),
) -> None:
    """Run long-running operations and see where each one stands."""
    ctx.obj = State(url=url, timeout=timeout, token=token)


def stdout() -> Console:
    """The console for results; wide when piped, so that ids are never cut."""
    return Console(highlight=False, width=None if sys.stdout.isatty() else 200)


def stderr() -> Console:
    """The console for progress bars and errors."""
    return Console(stderr=True, highlight=False)


def exit_code(exc: LongrunError) -> int:
    """2 when the server refused the request (4xx), 3 when it could not be reached, else 1."""
    if isinstance(exc, Unreachable):
        return EXIT_UNREACHABLE
    return EXIT_REFUSED if 400 <= exc.http_status < 500 else EXIT_FAILED


@contextmanager
def errors() -> Iterator[None]:
    """Print a LongrunError as ``code: message`` on stderr and exit with its code."""
    try:
        yield
    except LongrunError as exc:
        print(f"{exc.code}: {exc.message}", file=sys.stderr)
        for detail in exc.details:
            where = f" ({detail['target']})" if detail.get("target") else ""
            print(
                f"  {detail.get('code', '')}{where}: {detail.get('message', '')}", file=sys.stderr
            )
        raise typer.Exit(exit_code(exc)) from None


@contextmanager
def session(ctx: typer.Context) -> Iterator[Client]:
    """A client on the global ``--url``, with errors mapped to exit codes."""
    state = ctx.obj if isinstance(ctx.obj, State) else State()
    headers = {"Authorization": f"Bearer {state.token}"} if state.token else None
    with errors(), Client(state.url, timeout=state.timeout, headers=headers) as client:
        yield client
