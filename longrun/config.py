"""Settings from the environment (LONGRUN_ prefix) and the command line; one place for defaults."""

from __future__ import annotations

from pydantic import Field
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
    embedded_worker: bool = True  # `serve` runs a worker in the same process
    worker_slots: int = Field(8, ge=1, le=1024)
    lease_seconds: float = Field(30.0, gt=0)
    flush_interval: float = Field(0.2, gt=0, description="how often dirty progress is written")
    poll_interval: float = Field(1.0, gt=0, description="longest idle wait between claims")
    reaper_interval: float = Field(1.0, gt=0)
    retention_seconds: float | None = Field(
        7 * 86400.0, description="terminal operations older than this are purged; None keeps all"
    )
    max_body_bytes: int = Field(1 << 20, ge=1024)
    max_wait_seconds: float = Field(60.0, gt=0)
