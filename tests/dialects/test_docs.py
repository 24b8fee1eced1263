"""The runnable snippet of each docs/dialects page runs against a real server and prints its claims."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.dialects.conftest import Server

DOCS = Path(__file__).resolve().parents[2] / "docs" / "dialects"
EXPECTED = {
    "azure": ["'slept': 2.0", "FileNotFound no such file: /nope"],
    "google": ["SUCCEEDED", "no such file: /nope"],
    "oci": ["FAILED [('FileNotFound', 'no such file: /nope')]"],
    "cohesity": ["'status': 'kSuccess'"],
}


@pytest.mark.parametrize("page", sorted(EXPECTED))
def test_snippet_runs(server: Server, page: str, tmp_path: Path) -> None:
    text = (DOCS / f"{page}.md").read_text(encoding="utf-8")
    code = re.findall(r"```python\n(.*?)```", text, re.S)[0]
    code = code.replace("http://127.0.0.1:8080", server.url)
    run = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=90, cwd=tmp_path
    )
    assert run.returncode == 0, run.stderr
    for claim in EXPECTED[page]:
        assert claim in run.stdout, run.stdout
