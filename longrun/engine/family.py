"""Sub-operations: a handler spawns children; its progress sums theirs; a cancel reaches them."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from longrun.engine.registry import App
from longrun.engine.submission import new_operation
from longrun.model import Clock, IllegalTransition, NotFound, Operation, Status
from longrun.store.base import ListQuery, Store

__all__ = ["Family", "summarize"]

log = logging.getLogger(__name__)

_POLL = 0.25  # seconds: the longest a join waits between two reads of its children
_CANCEL_BOUND = 3.0  # seconds a canceled join waits for its children to stop
_SUCCESS = (Status.SUCCEEDED, Status.SUCCEEDED_WITH_WARNINGS)


class Family:
    """Spawns, watches and cancels the children of the operations a worker runs.

    The worker gives each Context a Family (``ctx.spawn`` / ``ctx.join_children`` call it).
    A child is an ordinary operation with ``parent_id`` set; its idempotency key is the
    parent's id and the spawn's index, so a retried parent finds the children it spawned.
    """

    def __init__(self, store: Store, app: App, clock: Clock) -> None:
        self.store = store
        self.app = app
        self.clock = clock

    async def spawn(self, ctx: Any, operation_type: str, input: Any) -> str:  # noqa: A002
        """Submit a child of ``ctx``'s operation in its compartment; returns the child's id."""
        op_type = self.app.get(operation_type)
        stored = op_type.input_to_json(op_type.validate_input(input))
        index = len(ctx.children)
        new = new_operation(
            op_type,
            stored,
            compartment_id=ctx.compartment_id,
            now=self.clock.now(),
            idempotency_key=f"spawn:{ctx.operation_id}:{index}",
            parent_id=ctx.operation_id,
        )
        result = await self.store.submit(new)
        ctx.children.append(result.operation.id)
        ctx.log(f"spawned {operation_type} {result.operation.id}")
        return result.operation.id

    async def children(self, parent_id: str) -> list[Operation]:
        """Every child of ``parent_id``, oldest first."""
        query = ListQuery(parent_id=parent_id, newest_first=False, limit=1000)
        return await self.store.list(query)

    async def join(self, ctx: Any) -> list[Operation]:
        """Until every child is terminal, folding their bytes and items into ``ctx.progress``.

        On a cancel: wait a few seconds for the children (the worker cancels them), then raise
        OperationCancelled."""
        loop = asyncio.get_running_loop()
        cancel_deadline: float | None = None
        while True:
            kids = await self.children(ctx.operation_id)
            _aggregate(ctx, kids)
            if all(kid.status.is_terminal for kid in kids):
                ctx.child_statuses = {kid.id: kid.status for kid in kids}
                if cancel_deadline is not None:
                    ctx.check_cancelled()
                return kids
            if ctx.cancel_signaled:
                cancel_deadline = cancel_deadline or loop.time() + _CANCEL_BOUND
                if loop.time() >= cancel_deadline:
                    ctx.check_cancelled()
            await self.store.wait_for_change(_POLL)

    async def cancel_children(self, parent_id: str) -> int:
        """Ask every unfinished child to cancel; returns how many were asked. Never raises:
        the parent's own cancel must not depend on it."""
        try:
            return await self._cancel_children(parent_id)
        except Exception as exc:
            log.warning("canceling the children of %s failed: %s", parent_id, exc)
            return 0

    async def _cancel_children(self, parent_id: str) -> int:
        asked = 0
        for kid in await self.children(parent_id):
            if kid.status.is_terminal:
                continue
            try:
                await self.store.request_cancel(kid.id, self.clock.now())
                asked += 1
            except (IllegalTransition, NotFound):  # it ended meanwhile
                continue
        if asked:
            log.info("canceled %d children of %s", asked, parent_id)
        return asked


def _aggregate(ctx: Any, kids: list[Operation]) -> None:
    if not kids:
        return
    ctx.progress(
        bytes_done=sum(kid.progress.bytes_done or 0 for kid in kids),
        bytes_total=sum(kid.progress.bytes_total or 0 for kid in kids),
        items_done=sum(1 for kid in kids if kid.status.is_terminal),
        items_total=len(kids),
    )


def summarize(statuses: dict[str, Status]) -> tuple[Status, list[str]]:
    """The parent's status by its children's: SUCCEEDED if all did, FAILED if none did,
    SUCCEEDED_WITH_WARNINGS between; with a line for each child that did not fully succeed."""
    lines = [
        f"sub-operation {kid} ended {status.value}"
        for kid, status in statuses.items()
        if status is not Status.SUCCEEDED
    ]
    if not statuses or all(s is Status.SUCCEEDED for s in statuses.values()):
        return Status.SUCCEEDED, lines
    if not any(s in _SUCCESS for s in statuses.values()):
        return Status.FAILED, lines
    return Status.SUCCEEDED_WITH_WARNINGS, lines
