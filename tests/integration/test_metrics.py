"""Prometheus metrics at /metrics, read from a real store and a real embedded worker."""

from __future__ import annotations

from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from longrun.model import ManualClock
from longrun.store import Store
from tests.integration.conftest import Api


async def _scrape(api: Api) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = await api.client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    samples: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    for family in text_string_to_metric_families(response.text):
        for s in family.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return samples


def _value(samples: dict[Any, float], name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


async def test_queue_depth_oldest_age_and_counts(api: Api, clock: ManualClock) -> None:
    ids = [(await api.submit()).json()["id"] for _ in range(3)]
    await api.submit(operationType="test.free", input={})
    await api.client.post(f"/v1/operations/{ids[0]}:hold")
    clock.advance(5)
    samples = await _scrape(api)
    assert _value(samples, "longrun_queue_depth") == 3
    assert _value(samples, "longrun_oldest_accepted_age_seconds") == 5
    assert _value(samples, "longrun_operations", status="ACCEPTED", operation_type="test.echo") == 2
    assert _value(samples, "longrun_operations", status="ON_HOLD", operation_type="test.echo") == 1
    assert _value(samples, "longrun_operations", status="ACCEPTED", operation_type="test.free") == 1
    await api.client.post(f"/v1/operations/{ids[1]}:cancel")
    samples = await _scrape(api)
    assert _value(samples, "longrun_queue_depth") == 2
    assert _value(samples, "longrun_operations", status="CANCELED", operation_type="test.echo") == 1
    # the fallback every engine inherits agrees with the engine's aggregate queries
    assert await Store.stats(api.store, clock.now()) == await api.store.stats(clock.now())


async def test_latency_and_duration_histograms_and_worker_counters(worker_api: Api) -> None:
    ids = [(await worker_api.submit()).json()["id"] for _ in range(2)]

    async def finished() -> bool:
        ops = [await worker_api.service.get(i) for i in ids]
        return all(op.status.value == "SUCCEEDED" for op in ops)

    await worker_api.until(finished)
    for _ in range(2):  # a second scrape observes nothing twice
        samples = await _scrape(worker_api)
        echo = {"operation_type": "test.echo"}
        assert _value(samples, "longrun_submit_to_start_seconds_count", **echo) == 2
        assert (
            _value(samples, "longrun_run_duration_seconds_count", status="SUCCEEDED", **echo) == 2
        )
    assert _value(samples, "longrun_worker_events_total", event="claimed") == 2
    assert _value(samples, "longrun_worker_events_total", event="succeeded") == 2
    assert ("longrun_lease_losses_total", ()) in samples
    assert ("longrun_retries_total", ()) in samples
    assert ("longrun_worker_heartbeats_total", ()) in samples
    assert _value(samples, "longrun_queue_depth") == 0
    assert _value(samples, "longrun_event_streams") == 0
