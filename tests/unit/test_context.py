"""The handler's Context: coalesced progress, ETA, logs, resources, cancellation, detaching."""

from __future__ import annotations

import asyncio
import threading
from datetime import UTC, datetime, timedelta

import pytest

from longrun.engine.context import Context, OperationCancelled
from longrun.model import (
    ActionType,
    InvalidInput,
    LogLevel,
    LongrunError,
    ManualClock,
    Operation,
    Status,
    new_id,
)

T0 = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(T0)


@pytest.fixture
def ctx(clock: ManualClock) -> Context:
    op = Operation(
        id=new_id(),
        operation_type="test.op",
        compartment_id="c1",
        status=Status.IN_PROGRESS,
        time_accepted=T0,
        last_action_time=T0,
        attempt=2,
    )
    return Context(op, clock=clock)


def test_identity_comes_from_the_operation(ctx: Context) -> None:
    assert ctx.operation_type == "test.op"
    assert ctx.compartment_id == "c1"
    assert ctx.attempt == 2
    assert ctx.operation_id == ctx.operation.id


def test_nothing_reported_means_no_update(ctx: Context) -> None:
    assert ctx.take_update() is None


def test_progress_is_coalesced_into_one_update(ctx: Context) -> None:
    ctx.progress(10)
    ctx.progress(20, items_done=2, items_total=10, object_type="table")
    ctx.progress(30, backup_metadata={"tables": 3})
    update = ctx.take_update()
    assert update is not None
    assert update.percent_complete == 30
    assert update.progress is not None
    assert update.progress.items_done == 2
    assert update.progress.properties == {"object_type": "table", "backup_metadata": {"tables": 3}}
    assert ctx.take_update() is None


def test_percent_never_decreases_and_is_clamped(ctx: Context) -> None:
    ctx.progress(40)
    ctx.progress(25)
    assert ctx.percent_complete == 40
    ctx.progress(250)
    assert ctx.percent_complete == 100
    update = ctx.take_update()
    assert update is not None and update.percent_complete == 100


def test_percent_is_derived_from_bytes_then_items(ctx: Context) -> None:
    ctx.progress(bytes_done=250, bytes_total=1000)
    assert ctx.percent_complete == 25
    ctx.progress(bytes_done=500)  # the total is remembered
    assert ctx.percent_complete == 50
    other = Context(ctx.operation, clock=ctx.clock)
    other.progress(items_done=3, items_total=4)
    assert other.percent_complete == 75


def test_progress_without_percent_or_totals_leaves_percent_unknown(ctx: Context) -> None:
    ctx.progress(bytes_done=100)
    update = ctx.take_update()
    assert update is not None
    assert update.percent_complete is None
    assert update.progress is not None and update.progress.bytes_done == 100


def test_eta_follows_the_observed_rate(ctx: Context, clock: ManualClock) -> None:
    ctx.progress(10)
    clock.advance(10)  # 10 % in 10 s: 1 %/s
    first = ctx.take_update()
    assert first is not None
    assert first.estimated_completion_time == clock.now() + timedelta(seconds=90)
    ctx.progress(20)
    clock.advance(10)
    second = ctx.take_update()
    assert second is not None and second.estimated_completion_time is not None
    assert second.estimated_completion_time == clock.now() + timedelta(seconds=80)


def test_eta_is_none_while_the_rate_is_unknown(ctx: Context) -> None:
    ctx.progress(10)  # no time has passed on the manual clock
    update = ctx.take_update()
    assert update is not None and update.estimated_completion_time is None


def test_logs_are_stamped_by_the_clock_and_taken_once(ctx: Context, clock: ManualClock) -> None:
    ctx.log("one")
    clock.advance(5)
    ctx.log("two", level="debug")
    update = ctx.take_update()
    assert update is not None
    assert [(e.message, e.level, e.timestamp) for e in update.logs] == [
        ("one", LogLevel.INFO, T0),
        ("two", LogLevel.DEBUG, T0 + timedelta(seconds=5)),
    ]
    assert update.progress is None and update.percent_complete is None
    assert ctx.take_update() is None


def test_unknown_log_level_is_refused(ctx: Context) -> None:
    with pytest.raises(InvalidInput):
        ctx.log("x", level="LOUD")


def test_warn_logs_a_warning_and_marks_warnings(ctx: Context) -> None:
    assert not ctx.has_warnings
    ctx.warn("disk almost full")
    assert ctx.has_warnings
    assert ctx.warnings == ["disk almost full"]
    update = ctx.take_update()
    assert update is not None and update.logs[0].level is LogLevel.WARNING


def test_errors_resources_and_location(ctx: Context) -> None:
    ctx.add_error("PartialCopy", "3 files skipped", target="files", details=[{"code": "Skip"}])
    ctx.add_resource("snapshot", "CREATED", "snap-1", entity_uri="/snapshots/snap-1")
    ctx.set_resource_location("/snapshots/snap-1")
    update = ctx.take_update()
    assert update is not None
    assert update.errors[0].code == "PartialCopy" and update.errors[0].timestamp == T0
    assert update.resources[0].action_type is ActionType.CREATED
    assert update.resource_location == "/snapshots/snap-1"
    assert ctx.has_warnings
    with pytest.raises(InvalidInput):
        ctx.add_resource("snapshot", "EXPLODED", "snap-1")


def test_put_back_carries_a_failed_update_again(ctx: Context) -> None:
    ctx.log("kept")
    ctx.progress(10)
    update = ctx.take_update()
    assert update is not None
    ctx.log("newer")
    ctx.put_back(update)
    again = ctx.take_update()
    assert again is not None
    assert [e.message for e in again.logs] == ["kept", "newer"]
    assert again.percent_complete == 10


def test_cancel_is_cooperative(ctx: Context) -> None:
    assert not ctx.cancelled
    ctx.check_cancelled()
    ctx.signal_cancel()
    assert ctx.cancel_signaled and not ctx.cancel_observed
    assert ctx.cancelled and ctx.cancel_observed
    with pytest.raises(OperationCancelled) as info:
        ctx.check_cancelled()
    assert isinstance(info.value, LongrunError)
    assert info.value.code == "OperationCancelled"


async def test_sleep_returns_early_on_cancel(ctx: Context) -> None:
    loop = asyncio.get_running_loop()
    loop.call_later(0.05, ctx.signal_cancel)
    started = loop.time()
    with pytest.raises(OperationCancelled):
        await ctx.sleep(30)
    assert loop.time() - started < 5


async def test_sleep_is_woken_from_another_thread(ctx: Context) -> None:
    timer = threading.Timer(0.05, ctx.signal_cancel)
    timer.start()
    try:
        with pytest.raises(OperationCancelled):
            await ctx.sleep(30)
    finally:
        timer.cancel()


async def test_sleep_without_cancel_sleeps(ctx: Context) -> None:
    await ctx.sleep(0.01)
    assert not ctx.cancel_signaled


def test_sleep_sync_returns_early_on_cancel(ctx: Context) -> None:
    timer = threading.Timer(0.05, ctx.signal_cancel)
    timer.start()
    try:
        with pytest.raises(OperationCancelled):
            ctx.sleep_sync(30)
    finally:
        timer.cancel()


def test_a_detached_context_ignores_everything(ctx: Context) -> None:
    ctx.detach()
    ctx.progress(50)
    ctx.log("late")
    ctx.warn("late")
    ctx.add_error("Late", "late")
    ctx.add_resource("x", "CREATED", "x")
    ctx.set_resource_location("x")
    ctx.set_result(1)
    assert ctx.take_update() is None
    assert ctx.result is None and not ctx.has_warnings
    assert ctx.detached and ctx.cancelled


def test_progress_from_many_threads_keeps_the_max(ctx: Context) -> None:
    def report(start: int) -> None:
        for i in range(start, 1000, 4):
            ctx.progress(i / 10)

    threads = [threading.Thread(target=report, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert ctx.percent_complete == 99.9
