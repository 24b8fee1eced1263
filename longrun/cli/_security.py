"""The admin verbs on the store itself: ``keys create|list|revoke`` and ``audit list``; and the
bind check of ``serve`` (no auth means loopback only)."""

from __future__ import annotations

import asyncio
import getpass
import ipaddress
import json
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import typer

from longrun.cli._app import app, errors, stdout
from longrun.model import ConfigurationError, utcnow

__all__ = ["bind_notice", "keys_app"]

T = TypeVar("T")

keys_app = typer.Typer(help="API keys: create (shown once), list, revoke.", no_args_is_help=True)
audit_app = typer.Typer(help="The audit trail of mutations.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")
app.add_typer(audit_app, name="audit")

_COMPARTMENTS = typer.Option([], "--compartment", help="a compartment it may use; repeatable")
_DB = typer.Option(None, "--db", help="store URL, e.g. sqlite:///longrun.db (env LONGRUN_DB)")


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def bind_notice(settings: Any) -> str:
    """What serve says about its exposure; ConfigurationError for a non-loopback host with auth
    off (unless LONGRUN_ALLOW_INSECURE_BIND is set, e.g. behind an authenticating proxy)."""
    if settings.auth != "off":
        return f"auth: {settings.auth}; listening on {settings.host}:{settings.port}"
    if _is_loopback(settings.host):
        return (
            f"auth is off: listening on loopback only ({settings.host}:{settings.port}); "
            "set LONGRUN_AUTH=keys|jwt|keys+jwt to serve other hosts"
        )
    if settings.allow_insecure_bind:
        return f"auth is off and {settings.host} is not loopback: anyone who reaches it is admin"
    raise ConfigurationError(
        f"refusing to listen on {settings.host} with auth off: anyone reaching it could read and "
        "cancel every operation. Set LONGRUN_AUTH=keys (then `longrun keys create`) or jwt, or "
        "bind 127.0.0.1",
        target="host",
    )


def _on_store(db: str | None, job: Callable[[Any], Awaitable[T]]) -> T:
    from longrun.cli._serve import settings_from
    from longrun.store import open_store

    async def run() -> T:
        store = open_store(settings_from(db=db).db)
        await store.open()
        try:
            return await job(store)
        finally:
            await store.close()

    return asyncio.run(run())


async def _audit(store: Any, action: str, target: str) -> None:
    from longrun.model import new_id
    from longrun.store.base import AuditRecord

    caller = f"cli:{getpass.getuser()}"
    await store.record_audit(AuditRecord(new_id(), utcnow(), caller, action, "ok", 0, target))


@keys_app.command("create")
def keys_create(
    role: str = typer.Option(..., "--role", help="reader, operator or admin"),
    compartments: list[str] = _COMPARTMENTS,
    name: str = typer.Option("", "--name", help="what the key is for"),
    db: str | None = _DB,
) -> None:
    """Create a key and print it once: only its hash is stored."""
    from longrun.auth import new_key, parse_role

    with errors():
        text, stored = new_key(parse_role(role), compartments, utcnow(), name)

        async def job(store: Any) -> None:
            await store.create_key(stored)
            await _audit(store, "key.create", stored.id)

        _on_store(db, job)
    stdout().print(text, soft_wrap=True)
    typer.echo(f"key id {stored.id}: store it now, it is not shown again", err=True)


@keys_app.command("revoke")
def keys_revoke(key_id: str = typer.Argument(...), db: str | None = _DB) -> None:
    """Revoke a key: its requests, streams included, are refused from now on."""
    with errors():

        async def job(store: Any) -> None:
            await store.revoke_key(key_id, utcnow())
            await _audit(store, "key.revoke", key_id)

        _on_store(db, job)
    typer.echo(f"revoked {key_id}")


@keys_app.command("list")
def keys_list(db: str | None = _DB) -> None:
    """Every key: id, role, compartments, name, created, revoked (never the secret)."""
    with errors():
        found = _on_store(db, lambda store: store.list_keys())
    for k in found:
        revoked = k.revoked_at.isoformat() if k.revoked_at else "-"
        scope = ",".join(k.compartments) or "*"
        stdout().print(
            f"{k.id}  {k.role:8}  {scope}  {k.name or '-'}  {k.created_at.isoformat()}  {revoked}",
            soft_wrap=True,
        )


@audit_app.command("list")
def audit_list(
    limit: int = typer.Option(50, "--limit", min=1, max=1000),
    as_json: bool = typer.Option(False, "--json"),
    db: str | None = _DB,
) -> None:
    """The newest audit records: time, caller, action, target, outcome."""
    with errors():
        found = _on_store(db, lambda store: store.list_audit(limit))
    for r in found:
        if as_json:
            typer.echo(json.dumps({**r.__dict__, "time": r.time.isoformat()}))
        else:
            line = f"{r.time.isoformat()}  {r.caller}  {r.action}  {r.target or '-'}  {r.outcome}"
            stdout().print(line, soft_wrap=True)
