"""Bytes reclaimed by a run: which storage readings bracket its deletions, and when
there is no clean reading (NaN, never a guess). The readings here are a timeline the
test sets (the real filesystem is read in test_gc_real_registry.py)."""

from __future__ import annotations

import math

import pytest

from registry_slo.ingest.formats import GcRunEnded
from registry_slo.ingest.reclaim import AFTER, HISTORY, MAX_GAP, ReclaimMeter

T0 = 1_797_000_000.0


class Storage:
    """Bytes used over time: a step function the test writes, read at the clock."""

    def __init__(self) -> None:
        self.now = T0
        self.steps: list[tuple[float, float]] = [(0.0, 1000.0)]

    def used(self) -> float:
        return [value for at, value in self.steps if at <= self.now][-1]


def meter(storage: Storage) -> tuple[ReclaimMeter, list[float]]:
    reported: list[float] = []
    return ReclaimMeter(storage.used, reported.append, lambda: storage.now), reported


def run(first: float, last: float, result: str = "ok", deleted: int = 3) -> GcRunEnded:
    return GcRunEnded(result, last, (first, last), deleted)  # type: ignore[arg-type]


def poll_until(storage: Storage, m: ReclaimMeter, until: float, every: float = 1.0) -> None:
    while storage.now < until:
        m.sample()
        storage.now += every


def test_readings_before_the_first_and_after_the_last_deletion() -> None:
    storage = Storage()
    m, reported = meter(storage)
    # Something else writes 5 bytes before the run (not its work); its deletions from
    # T0+10.2 to T0+10.4 free 300.
    storage.steps += [(T0 + 9.5, 1005.0), (T0 + 10.3, 805.0), (T0 + 10.4, 705.0)]
    poll_until(storage, m, T0 + 10.25)
    m.ended(run(T0 + 10.2, T0 + 10.4))
    assert reported == []  # no reading a second after the last deletion yet
    poll_until(storage, m, T0 + 13)
    assert reported == [300.0]  # 1005 at T0+10 minus 705 at T0+12


def test_a_run_read_late_uses_the_readings_it_happened_between() -> None:
    storage = Storage()
    m, reported = meter(storage)
    storage.steps += [(T0 + 10.3, 500.0)]
    poll_until(storage, m, T0 + 60)  # its lines arrive a minute later
    m.ended(run(T0 + 10.2, T0 + 10.4))
    assert reported == [500.0]


@pytest.mark.parametrize(("readings", "first"), [
    ([(T0 + 100, T0 + 200)], T0 + 99.5),              # the exporter started after it began
    ([(T0, T0 + 10), (T0 + 30, T0 + 40)], T0 + 25),   # it was not reading for 20s
    ([(T0, T0 + 2 * HISTORY)], T0 + 50),               # its lines came after HISTORY
])
def test_no_reading_close_before_the_first_deletion_is_nan(
    readings: list[tuple[float, float]], first: float
) -> None:
    storage = Storage()
    m, reported = meter(storage)
    for start, stop in readings:
        storage.now = start
        poll_until(storage, m, stop)
    m.ended(run(first, first + 0.2))
    assert len(reported) == 1 and math.isnan(reported[0])


def test_no_reading_soon_after_the_last_deletion_is_nan() -> None:
    storage = Storage()
    m, reported = meter(storage)
    poll_until(storage, m, T0 + 11)
    m.ended(run(T0 + 10.2, T0 + 10.4))
    storage.now = T0 + 10.4 + AFTER + MAX_GAP + 1  # the exporter stalled
    m.sample()
    assert len(reported) == 1 and math.isnan(reported[0])


def test_untimed_deletions_are_nan_and_no_deletion_is_zero() -> None:
    storage = Storage()
    m, reported = meter(storage)
    poll_until(storage, m, T0 + 5)
    m.ended(GcRunEnded("ok", T0 + 4, None, 2))
    m.ended(GcRunEnded("ok", T0 + 4, None, 0))
    assert math.isnan(reported[0]) and reported[1:] == [0.0]


def test_dry_and_failed_runs_reclaim_nothing_to_report() -> None:
    storage = Storage()
    m, reported = meter(storage)
    poll_until(storage, m, T0 + 20)
    m.ended(run(T0 + 10, T0 + 11, "dry_run", 0))
    m.ended(run(T0 + 10, T0 + 11, "failed"))
    assert reported == []


def test_an_unreadable_filesystem_gives_no_reading() -> None:
    storage = Storage()
    storage.steps = [(0.0, math.nan)]
    m, reported = meter(storage)
    poll_until(storage, m, T0 + 20)
    m.ended(run(T0 + 10, T0 + 11))
    assert len(reported) == 1 and math.isnan(reported[0])
