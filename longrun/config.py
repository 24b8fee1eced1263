"""Settings from the environment (LONGRUN_ prefix) and the command line; one place for defaults."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["DEFAULT_DB", "Settings"]

DEFAULT_DB = "sqlite:///./longrun.db"


class Settings(BaseSettings):
    """Everything a longrun process can be told; ``LONGRUN_DB=...`` sets ``db`` and so on."""

    model_config = SettingsConfigDict(env_prefix="LONGRUN_", extra="ignore")

    db: str = Field(DEFAULT_DB, description="store URL: sqlite:///path or postgresql://…")
    host: str = "127.0.0.1"
    port: int = Field(8080, ge=0, le=65535)
    public_url: str | None = Field(None, description="base URL for absolute links; else from Host")
    apps: list[str] = Field(
        default_factory=list, description="extra operation types to load, as module:attribute"
    )
    data_dir: str = Field(
        "./longrun-data", description="where built-in operations keep data (the snapshot store)"
    )
    embedded_worker: bool = True  # `serve` runs a worker in the same process
    worker_slots: int = Field(8, ge=1, le=1024)
    lease_seconds: float = Field(30.0, gt=0)
    flush_interval: float = Field(
        0.2, gt=0, description="how often one operation's news is written (each at its own phase)"
    )
    poll_interval: float = Field(1.0, gt=0, description="longest idle wait between claims")
    reaper_interval: float = Field(1.0, gt=0)
    retention_seconds: float | None = Field(
        7 * 86400.0, description="terminal operations older than this are purged; None keeps all"
    )
    tombstone_retention_seconds: float | None = Field(
        30 * 86400.0,
        description="tombstones of purged operations expire after this (their ids then answer 404)"
        "; None keeps them forever",
    )
    audit_retention_seconds: float | None = Field(
        90 * 86400.0,
        description="audit records older than this are deleted; None keeps them forever",
    )
    max_body_bytes: int = Field(1 << 20, ge=1024)
    max_wait_seconds: float = Field(60.0, gt=0)
    webhook_secret: SecretStr | None = Field(
        None, description="signs webhooks whose callback names no secret of its own"
    )
    webhook_timeout: float = Field(10.0, gt=0, description="seconds for one webhook POST")
    webhook_concurrency: int = Field(8, ge=1, le=1024)
    webhook_max_attempts: int = Field(8, ge=1, le=100)
    webhook_retry_base: float = Field(2.0, gt=0, description="first retry delay; doubles after")
    # security (docs/security.md) -------------------------------------------------------------
    auth: Literal["off", "keys", "jwt", "keys+jwt"] = Field(
        "off", description="off binds to loopback only; keys, jwt or keys+jwt"
    )
    jwt_secret: SecretStr | None = Field(None, description="HS256 shared secret")
    jwt_jwks_file: str | None = Field(None, description="a JWKS file of RS256/ES256 public keys")
    jwt_issuer: str | None = None
    jwt_audience: str | None = None
    jwt_leeway_seconds: float = Field(10.0, ge=0, le=300)
    jwt_role_claim: str = "role"
    jwt_compartments_claim: str = "compartments"
    metrics_token: SecretStr | None = Field(None, description="a bearer token that opens /metrics")
    auth_recheck_seconds: float = Field(
        5.0, gt=0, description="how often a stream or wait checks that its key is still valid"
    )
    rate_limit_per_second: float | None = Field(
        None, ge=0, description="requests per caller; None: 50 with auth on, off without; 0: off"
    )
    rate_limit_burst: int = Field(100, ge=1)
    max_streams_per_caller: int = Field(32, ge=1)
    max_logs_per_operation: int = Field(
        10_000, ge=1, description="log entries one operation keeps (the oldest), then a marker"
    )
    max_errors_per_operation: int = Field(
        1_000, ge=1, description="errors one operation keeps (the oldest), then a marker"
    )
    max_resources_per_operation: int = Field(
        10_000, ge=1, description="resources one operation lists (the oldest), then a log line"
    )
    allow_insecure_bind: bool = Field(
        False, description="let serve bind a non-loopback host with auth off (behind a proxy)"
    )
