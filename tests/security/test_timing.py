"""Another compartment's operation answers exactly as a missing one: same body, same store work."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from longrun.model import NotFound, new_id
from longrun.service import Service
from longrun.store import open_store
from tests.integration.conftest import make_test_app


class _Recording:
    """The real store, with the reads it was asked for written down."""

    def __init__(self, store: Any) -> None:
        self._store = store
        self.calls: list[str] = []

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._store, name)
        if name.startswith("get"):
            self.calls.append(name)
        return attribute


async def test_a_hidden_operation_costs_what_a_missing_one_does(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path}/t.db")
    await store.open()
    try:
        recording = _Recording(store)
        service = Service(recording, make_test_app())  # type: ignore[arg-type]
        theirs, _ = await service.submit("test.echo", {"message": "x"}, compartment_id="theirs")
        answers = []
        for op_id in (theirs.id, new_id()):
            recording.calls.clear()
            with pytest.raises(NotFound) as caught:
                await service.get(op_id, compartments={"mine"})
            answers.append((caught.value.to_body(), list(recording.calls)))
        (hidden_body, hidden_calls), (missing_body, missing_calls) = answers
        assert hidden_body == missing_body
        assert hidden_calls == missing_calls == ["get", "get_tombstone"]
    finally:
        await store.close()
