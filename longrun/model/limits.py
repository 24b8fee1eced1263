"""Shape limits of caller-supplied JSON (nesting depth, string length, container size)."""

from __future__ import annotations

from typing import Any

from longrun.model.errors import InvalidInput

__all__ = ["MAX_JSON_DEPTH", "MAX_JSON_ITEMS", "MAX_STRING_LENGTH", "check_json_shape"]

MAX_JSON_DEPTH = 32
MAX_STRING_LENGTH = 64 * 1024  # characters, keys included
MAX_JSON_ITEMS = 10_000  # values in the whole document


def check_json_shape(
    value: Any,
    *,
    target: str = "input",
    max_depth: int = MAX_JSON_DEPTH,
    max_string: int = MAX_STRING_LENGTH,
    max_items: int = MAX_JSON_ITEMS,
) -> None:
    """InvalidInput when ``value`` nests deeper than ``max_depth``, holds a string (or key) longer
    than ``max_string`` or more than ``max_items`` values. Iterative: no recursion to exhaust."""
    stack: list[tuple[Any, int]] = [(value, 0)]
    seen = 0
    while stack:
        item, depth = stack.pop()
        seen += 1
        if seen > max_items:
            raise InvalidInput(f"{target} holds more than {max_items} values", target=target)
        if isinstance(item, str):
            if len(item) > max_string:
                raise InvalidInput(
                    f"a string in {target} is longer than {max_string} characters", target=target
                )
        elif isinstance(item, dict | list | tuple):
            if depth >= max_depth:
                raise InvalidInput(f"{target} nests deeper than {max_depth} levels", target=target)
            children = item.items() if isinstance(item, dict) else ((None, v) for v in item)
            for key, child in children:
                if isinstance(key, str) and len(key) > max_string:
                    raise InvalidInput(
                        f"a key in {target} is longer than {max_string} characters", target=target
                    )
                stack.append((child, depth + 1))
