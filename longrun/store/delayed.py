"""A store that answers slowly: every call waits ``delay`` seconds first (fault injection, opt-in)."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from typing import Any

from longrun.store.base import Store

__all__ = ["DELAY_ENV", "DelayedStore", "delayed_methods"]

DELAY_ENV = "LONGRUN_STORE_DELAY_MS"  # open_store wraps the store when this is a positive number

# waiting for a change is already a wait: delaying it would only hide changes
_UNDELAYED = frozenset({"wait_for_change", "open", "close"})


def delayed_methods() -> list[str]:
    """The Store methods a DelayedStore slows down."""
    names = set(Store.__abstractmethods__) | {"changed_since", "stats"}
    return sorted(names - _UNDELAYED)


class DelayedStore(Store):
    """Wraps ``inner``; each domain call sleeps ``delay`` seconds, then delegates."""

    def __init__(self, inner: Store, delay: float) -> None:
        self.inner = inner
        self.delay = delay

    async def open(self) -> None:
        await self.inner.open()

    async def close(self) -> None:
        await self.inner.close()

    async def wait_for_change(self, timeout: float) -> bool:
        return await self.inner.wait_for_change(timeout)

    def __getattr__(self, name: str) -> Any:  # anything else an engine offers (stats helpers…)
        return getattr(self.inner, name)


def _delayed(name: str) -> Callable[..., Any]:
    async def call(self: DelayedStore, *args: Any, **kwargs: Any) -> Any:
        await asyncio.sleep(self.delay)
        return await getattr(self.inner, name)(*args, **kwargs)

    functools.update_wrapper(call, getattr(Store, name))
    return call


for _name in delayed_methods():
    setattr(DelayedStore, _name, _delayed(_name))
DelayedStore.__abstractmethods__ = frozenset()
