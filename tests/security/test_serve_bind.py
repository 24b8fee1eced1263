"""`longrun serve` on a public address: refused without auth, served with it (real processes)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import httpx

from tests.acceptance.conftest import Cluster
from tests.support import COMMAND, STARTUP_TIMEOUT, free_port, until


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {**os.environ, "LONGRUN_DB": f"sqlite:///{tmp_path}/serve.db", **extra}
    for name in ("LONGRUN_AUTH", "LONGRUN_ALLOW_INSECURE_BIND", "LONGRUN_URL"):
        if name not in extra:
            env.pop(name, None)
    return env


def test_a_public_bind_without_auth_is_refused(tmp_path: Path) -> None:
    done = subprocess.run(
        [*COMMAND, "serve", "--host", "0.0.0.0", "--port", str(free_port())],
        env=_env(tmp_path),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=STARTUP_TIMEOUT,
    )
    assert done.returncode != 0
    said = done.stdout + done.stderr
    assert "refusing to listen on 0.0.0.0 with auth off" in said
    assert "LONGRUN_AUTH" in said


def test_a_public_bind_with_auth_starts_and_asks_for_credentials(tmp_path: Path) -> None:
    cluster = Cluster(tmp_path, free_port(), _env(tmp_path, LONGRUN_AUTH="keys"))
    proc = cluster.start(
        "serve", "serve", "--no-worker", "--host", "0.0.0.0", "--port", str(cluster.port)
    )
    try:

        def answered() -> int | None:
            assert proc.popen.poll() is None, proc.output()
            try:
                return httpx.get(f"{cluster.url}/v1/operations", timeout=1).status_code
            except httpx.TransportError:
                return None

        assert until(answered, STARTUP_TIMEOUT, "serve answering") == 401
        assert "auth: keys; listening on 0.0.0.0" in proc.output()
    finally:
        proc.stop()
