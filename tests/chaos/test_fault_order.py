"""The chaos injector's order: every kind once first, a kind that could not be injected (no second
live worker, say) tried again before any other, up to FIRST_TRIES attempts; then at random."""

from __future__ import annotations

from collections import Counter

from bench.chaos.faults import FIRST_TRIES, KINDS, Injector
from bench.chaos.procs import Cluster


def _injector() -> Injector:
    cluster = Cluster.__new__(Cluster)  # never started: only the order is under test
    return Injector(cluster, kinds=list(KINDS), pace=(1.0, 1.0), seed=7)


def test_a_kind_that_could_not_be_injected_stays_first() -> None:
    injector, attempts = _injector(), Counter[str]()
    order = list(KINDS)
    first = injector._next_kind(order, attempts)
    for _ in range(FIRST_TRIES - 1):  # each attempt failed: nothing counted
        attempts[first] += 1
        assert injector._next_kind(order, attempts) == first
    attempts[first] += 1
    assert injector._next_kind(order, attempts) != first  # given up on, left to chance


def test_every_kind_comes_once_before_any_repeats() -> None:
    injector, attempts = _injector(), Counter[str]()
    order = list(KINDS)
    seen = []
    for _ in KINDS:
        kind = injector._next_kind(order, attempts)
        attempts[kind] += 1
        injector.counts[kind] += 1
        seen.append(kind)
    assert sorted(seen) == sorted(KINDS)
    assert injector._next_kind(order, attempts) in KINDS
