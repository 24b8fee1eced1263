"""The README's own operation type: the same code as examples/custom_operation.py, and it runs."""

from __future__ import annotations

import importlib.util
import re
from collections.abc import AsyncIterator
from pathlib import Path
from types import ModuleType

import httpx
import pytest

from longrun.api import create_app
from longrun.builtin import default_app
from longrun.client import AsyncClient
from longrun.config import Settings
from longrun.model import Status

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "custom_operation.py"


def _load_example() -> ModuleType:
    spec = importlib.util.spec_from_file_location("custom_operation_example", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_readme_shows_the_example_verbatim() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Write your own operation type", 1)[1]
    block = re.search(r"```python\n(.*?)```", section, re.DOTALL)
    assert block is not None
    assert block.group(1) == EXAMPLE.read_text(encoding="utf-8")


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[AsyncClient]:
    """The real app with the built-in types plus the example, an embedded worker, over ASGI."""
    app = default_app()
    app.include(_load_example().app)
    settings = Settings(db=f"sqlite:///{tmp_path}/ex.db", poll_interval=0.05, flush_interval=0.05)
    api = create_app(settings, app=app)
    async with api.router.lifespan_context(api):
        transport = httpx.ASGITransport(app=api)
        async with AsyncClient("http://test", transport=transport, poll_interval=0.05) as c:
            yield c


async def test_the_example_counts_words(client: AsyncClient, tmp_path: Path) -> None:
    text = tmp_path / "poem.txt"
    text.write_text("one two three\nfour five\n\nsix\n", encoding="utf-8")
    op = await client.submit("example.count_words", {"path": str(text)})
    done = await client.wait(op.id, timeout=20)
    assert done.status is Status.SUCCEEDED, done.errors
    assert done.result == {"lines": 4, "words": 6}
    assert done.progress.items_done == done.progress.items_total == 4
    assert [r.identifier for r in done.resources] == [str(text.resolve())]


async def test_the_example_fails_cleanly_on_a_missing_file(
    client: AsyncClient, tmp_path: Path
) -> None:
    op = await client.submit("example.count_words", {"path": str(tmp_path / "missing.txt")})
    done = await client.wait(op.id, timeout=20)
    assert done.status is Status.FAILED
    assert done.errors[0].code == "FileNotFound"
