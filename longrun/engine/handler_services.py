"""What a handler reaches through the worker running it: sub-operations, its compartment's history."""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Coroutine
from typing import Any, TypeVar

from longrun.model import Clock, ConfigurationError, InvalidInput, Operation, StoreUnavailable
from longrun.store.base import Tombstone

__all__ = ["HandlerServices", "Tombstone"]

T = TypeVar("T")

_STORE_CALL_BOUND = 60.0  # seconds a handler thread waits for one store call made for it


class HandlerServices:
    """The part of Context that needs the worker (its ``family``: the store, the registry).

    Without a worker (``longrun.testing.run_handler``) these raise ConfigurationError."""

    operation: Operation
    clock: Clock
    family: Any
    children: list[str]
    _loop: asyncio.AbstractEventLoop | None  # the engine's loop, when made on it

    # sub-operations ----------------------------------------------------------------------------
    async def spawn(self, operation_type: str, input: Any = None) -> str:  # noqa: A002
        """Submit a sub-operation (``parent_id`` = this one) in this compartment; its id."""
        return str(await self._family().spawn(self, operation_type, input))

    async def join_children(self) -> list[Operation]:
        """Wait until every sub-operation ended, aggregating their progress into this one's.

        The end status then follows theirs (see ``longrun.engine.family.summarize``)."""
        kids: list[Operation] = await self._family().join(self)
        return kids

    def _family(self) -> Any:
        if self.family is None:
            raise ConfigurationError("sub-operations need a worker (no Family on this Context)")
        return self.family

    # the compartment's history -----------------------------------------------------------------
    async def purge_terminal_operations(self, limit: int = 500) -> list[Tombstone]:
        """Purge up to ``limit`` terminal operations of this operation's own compartment, oldest
        id first, as retention does: each leaves a tombstone, so its id answers 410 Gone.

        Operations not yet terminal (this one included) stay. Returns the tombstones; call again
        until a batch is shorter than ``limit`` to purge them all. Needs a worker's store."""
        if not 1 <= limit <= 10_000:
            raise InvalidInput("limit is between 1 and 10000", target="limit")
        if self.family is None:
            raise ConfigurationError("purging operations needs a worker's store (no Family)")
        purged: list[Tombstone] = await self.family.store.purge_compartment(
            self.operation.compartment_id, self.clock.now(), limit
        )
        return purged

    def purge_terminal_operations_sync(self, limit: int = 500) -> list[Tombstone]:
        """``purge_terminal_operations`` for plain ``def`` handlers, which run in a thread."""
        return self._call_on_loop(self.purge_terminal_operations(limit))

    def _call_on_loop(self, coroutine: Coroutine[Any, Any, T]) -> T:
        """Run ``coroutine`` on the engine's loop and wait for it, from a handler thread."""
        loop = self._loop
        try:
            on_loop_thread = asyncio.get_running_loop() is loop
        except RuntimeError:
            on_loop_thread = False
        if loop is None or on_loop_thread:
            coroutine.close()
            raise ConfigurationError(
                "the _sync methods are for handler threads; on the event loop, await the method"
            )
        future = asyncio.run_coroutine_threadsafe(coroutine, loop)
        try:
            return future.result(timeout=_STORE_CALL_BOUND)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise StoreUnavailable(
                f"the store did not answer within {_STORE_CALL_BOUND:.0f} s"
            ) from None
