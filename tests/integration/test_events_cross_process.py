"""Events written by a `longrun worker` in another process reach a stream of this server."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx

from longrun.api import create_app
from tests.integration.conftest import settings_for
from tests.integration.sse import EventReader, serve_app

_ENTRY = Path(sys.executable).with_name("longrun")
COMMAND = [str(_ENTRY)] if _ENTRY.exists() else [sys.executable, "-m", "longrun.cli"]


async def test_a_worker_elsewhere_moves_the_stream(tmp_path: Path) -> None:
    settings = settings_for(tmp_path)  # no embedded worker: only the other process runs handlers
    app = create_app(settings)
    env = {**os.environ, "LONGRUN_DB": settings.db, "LONGRUN_POLL_INTERVAL": "0.05"}
    log = (tmp_path / "worker.log").open("wb")
    worker = subprocess.Popen(
        [*COMMAND, "worker", "--slots", "2"], env=env, stdout=log, stderr=subprocess.STDOUT
    )
    try:
        async with serve_app(app) as url, httpx.AsyncClient(base_url=url, timeout=20) as http:
            async with http.stream("GET", "/v1/events?operationType=demo.sleep") as response:
                reader = EventReader(response)
                assert (await reader.next()) is not None  # ready
                body = {"operationType": "demo.sleep", "input": {"seconds": 1, "steps": 5}}
                op = (await http.post("/v1/operations", json=body)).json()
                running = await reader.until(
                    lambda o: o["id"] == op["id"] and (o["progress"].get("itemsDone") or 0) > 0,
                    timeout=30,
                )
                assert running.json()["workerId"]
                done = await reader.until(lambda o: o["status"] == "SUCCEEDED", timeout=30)
                assert done.json()["result"]["steps"] == 5
            metrics = (await http.get("/metrics")).text
            assert "longrun_events_published_total" in metrics
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(20)
        log.close()
