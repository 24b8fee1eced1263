"""Prometheus metrics at ``/metrics``: what the store holds, what moved since the last scrape,
and the counters of the embedded worker and of the event streams."""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from datetime import datetime, timedelta
from typing import Any

from fastapi import APIRouter, Request
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from starlette.responses import Response

from longrun.model import Clock, Operation
from longrun.store.base import Store, StoreStats

__all__ = ["Metrics", "router"]

router = APIRouter(tags=["meta"])

_LATENCY_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600)
_DURATION_BUCKETS = (0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 1800, 3600, 4 * 3600, 24 * 3600)
_LOOKBACK = timedelta(seconds=2)  # a write stamped before a scrape may commit after it
_MAX_REMEMBERED = 100_000
_BATCH = 500


class _Snapshot(Collector):
    """Gauges and counters read at scrape time from the last refresh."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    def collect(self) -> Iterator[Metric]:
        m = self.metrics
        by_status = GaugeMetricFamily(
            "longrun_operations",
            "Operations in the store by status and type",
            labels=["status", "operation_type"],
        )
        stats = m.stats
        if stats is not None:
            for (status, op_type), n in sorted(stats.counts.items(), key=str):
                by_status.add_metric([status.value, op_type], n)
        yield by_status
        yield GaugeMetricFamily(
            "longrun_queue_depth",
            "ACCEPTED operations whose start time has come, not yet claimed",
            value=stats.ready if stats else 0,
        )
        yield GaugeMetricFamily(
            "longrun_oldest_accepted_age_seconds",
            "Age of the oldest operation waiting in the queue (0 when empty)",
            value=m.oldest_age,
        )
        yield from m.worker_metrics()
        yield from m.hub_metrics()


class Metrics:
    """One registry per app; ``refresh()`` reads the store before each scrape."""

    def __init__(self, store: Store, clock: Clock, app_state: Any) -> None:
        self.store = store
        self.clock = clock
        self.state = app_state
        self.registry = CollectorRegistry(auto_describe=True)
        self.stats: StoreStats | None = None
        self.oldest_age = 0.0
        self.submit_to_start = Histogram(
            "longrun_submit_to_start_seconds",
            "From acceptance to the start of the first attempt",
            ["operation_type"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.run_duration = Histogram(
            "longrun_run_duration_seconds",
            "From the start of the last attempt to the terminal state",
            ["operation_type", "status"],
            buckets=_DURATION_BUCKETS,
            registry=self.registry,
        )
        self.registry.register(_Snapshot(self))
        self._since: datetime = clock.now()
        self._started: dict[str, None] = {}  # ids whose start was observed (ordered, for pruning)
        self._ended: dict[str, None] = {}

    async def refresh(self) -> None:
        """Read the counts and the queue, and observe every start and end since the last one."""
        now = self.clock.now()
        self.stats = await self.store.stats(now)
        oldest = self.stats.oldest_ready
        self.oldest_age = max(0.0, (now - oldest).total_seconds()) if oldest else 0.0
        start = self._since - _LOOKBACK
        self._since = now
        while True:
            ops = await self.store.changed_since(start, _BATCH)
            for op in ops:
                self._observe(op)
            if len(ops) < _BATCH or ops[-1].last_action_time <= start:
                break
            start = ops[-1].last_action_time

    def _observe(self, op: Operation) -> None:
        if op.time_started is not None and op.attempt == 1 and op.id not in self._started:
            wait = (op.time_started - op.time_accepted).total_seconds()
            self.submit_to_start.labels(op.operation_type).observe(max(0.0, wait))
            _remember(self._started, op.id)
        if op.is_terminal and op.id not in self._ended:
            if op.time_started is not None and op.time_finished is not None:
                ran = (op.time_finished - op.time_started).total_seconds()
                self.run_duration.labels(op.operation_type, op.status.value).observe(max(0.0, ran))
            _remember(self._ended, op.id)

    def worker_metrics(self) -> Iterable[Metric]:
        """The embedded worker's counters (claims, outcomes, retries, lease losses, heartbeats)."""
        worker = getattr(self.state, "worker", None)
        counters = getattr(worker, "counters", None)
        values: dict[str, int] = counters.as_dict() if counters is not None else {}
        events = CounterMetricFamily(
            "longrun_worker_events",
            "What the embedded worker did since it started",
            labels=["event"],
        )
        for name, value in sorted(values.items()):
            events.add_metric([name], value)
        yield events
        yield CounterMetricFamily(
            "longrun_lease_losses", "Leases the worker lost", value=values.get("lease_lost", 0)
        )
        yield CounterMetricFamily(
            "longrun_retries", "Attempts that ended in a retry", value=values.get("retried", 0)
        )
        yield CounterMetricFamily(
            "longrun_worker_heartbeats",
            "Heartbeats the worker wrote",
            value=values.get("heartbeats", 0),
        )
        yield GaugeMetricFamily(
            "longrun_worker_running",
            "Operations the embedded worker runs now",
            value=len(getattr(worker, "running", ()) or ()),
        )

    def hub_metrics(self) -> Iterable[Metric]:
        """The event streams: open subscribers, hub passes and changes published."""
        hub = getattr(self.state, "events", None)
        yield GaugeMetricFamily(
            "longrun_event_streams", "Open event streams", value=getattr(hub, "subscribers", 0)
        )
        yield CounterMetricFamily(
            "longrun_events_published",
            "Operation changes the hub fanned out",
            value=getattr(hub, "published", 0),
        )
        yield CounterMetricFamily(
            "longrun_events_hub_reads",
            "Reads of the store's change feed by the hub (one per wake, shared by every stream)",
            value=getattr(hub, "passes", 0),
        )


def _remember(seen: dict[str, None], key: str) -> None:
    seen[key] = None
    if len(seen) > _MAX_REMEMBERED:
        for old in list(seen)[: _MAX_REMEMBERED // 2]:
            del seen[old]


@router.get("/metrics", include_in_schema=False)
async def metrics(request: Request) -> Response:
    """The Prometheus exposition of this server."""
    state = request.app.state
    collector: Metrics | None = getattr(state, "metrics", None)
    if collector is None:
        collector = state.metrics = Metrics(state.store, state.service.clock, state)
    started = time.perf_counter()
    await collector.refresh()
    body = generate_latest(collector.registry)
    elapsed = f"{(time.perf_counter() - started) * 1000:.1f}"
    return Response(body, media_type=CONTENT_TYPE_LATEST, headers={"X-Scrape-Ms": elapsed})
