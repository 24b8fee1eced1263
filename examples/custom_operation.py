"""Write your own operation type: count the lines and words of a text file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from longrun.engine.registry import App
from longrun.model import OperationError

__all__ = ["CountWords", "app", "count_words"]

app = App()


class CountWords(BaseModel):
    """The input: checked by the server before anything is written."""

    path: str = Field(min_length=1)


@app.operation("example.count_words", input=CountWords, max_attempts=3)
def count_words(ctx: Any, input: CountWords) -> dict[str, int]:  # noqa: A002
    """Count the lines and words of a text file."""
    path = Path(input.path)
    if not path.is_file():
        raise OperationError("FileNotFound", f"no such file: {path}", target="input.path")
    lines = path.read_text(encoding="utf-8").splitlines()
    words = 0
    for done, line in enumerate(lines, start=1):
        ctx.check_cancelled()  # a cancel stops us between lines
        words += len(line.split())
        ctx.progress(items_done=done, items_total=len(lines))
    ctx.add_resource("file", "RELATED", str(path.resolve()))
    ctx.log(f"{words} words in {len(lines)} lines")
    return {"lines": len(lines), "words": words}
