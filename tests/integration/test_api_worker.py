"""The API with its embedded worker: operations reach terminal states through the real engine."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

from longrun.api import create_app
from longrun.bootstrap import load_app
from longrun.config import Settings
from longrun.model import ConfigurationError


async def status_via_api(api: Any, op_id: str) -> str:
    status: str = (await api.client.get(f"/v1/operations/{op_id}")).json()["status"]
    return status


async def test_wait_returns_the_result_of_a_real_run(worker_api: Any) -> None:
    op_id = (await worker_api.submit(input={"message": "ab", "count": 3})).json()["id"]
    response = await worker_api.client.get(f"/v1/operations/{op_id}:wait", params={"timeout": 20})
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "SUCCEEDED"
    assert body["result"] == {"echo": "ababab"}
    assert body["timeStarted"] and body["timeFinished"]
    assert "retry-after" not in response.headers


async def test_cancel_of_a_running_operation_goes_through_canceling(worker_api: Any) -> None:
    response = await worker_api.submit(operationType="test.until_canceled", input={})
    op_id = response.json()["id"]

    async def running() -> bool:
        return await status_via_api(worker_api, op_id) == "IN_PROGRESS"

    await worker_api.until(running)
    canceled = await worker_api.client.post(f"/v1/operations/{op_id}:cancel")
    assert canceled.status_code == 200
    assert canceled.json()["status"] in {"CANCELING", "CANCELED"}
    final = await worker_api.client.get(f"/v1/operations/{op_id}:wait", params={"timeout": 20})
    assert final.json()["status"] == "CANCELED"
    logs = (await worker_api.client.get(f"/v1/operations/{op_id}/logs")).json()["items"]
    assert "started" in [entry["message"] for entry in logs]


async def test_the_default_app_serves_the_builtin_types(tmp_path: Path) -> None:
    settings = Settings(db=f"sqlite:///{tmp_path}/d.db", embedded_worker=False)
    app = create_app(settings)
    names = {t.name for t in app.state.operation_app}
    assert "demo.sleep" in names


def test_apps_from_settings_are_loaded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "extra_ops.py").write_text(
        "from longrun.engine.registry import App\n"
        "app = App()\n"
        "@app.operation('extra.one')\n"
        "def one(ctx, data):\n"
        "    '''One.'''\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        loaded = load_app(Settings(apps=["extra_ops:app"]))
        assert "extra.one" in loaded.names()
        for bad in (["extra_ops"], ["extra_ops:missing"], ["no_such_module_xyz:app"]):
            with pytest.raises(ConfigurationError):
                load_app(Settings(apps=bad))
    finally:
        sys.modules.pop("extra_ops", None)
