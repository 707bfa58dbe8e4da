"""Time buckets in a ring (registry_slo.sli.buckets)."""

from __future__ import annotations

import math
import random

import pytest

from registry_slo.sli.buckets import BucketRing

T0 = 1_700_000_040.0  # a multiple of 60


def brute_force(events: list[tuple[float, float, float]], start: float, end: float,
                width: int) -> tuple[float, float]:
    """The ring's answer computed from the raw events: whole buckets inside the window,
    and the bucket holding ``start`` by the fraction of it inside."""
    bad = total = 0.0
    first = math.floor(start / width)
    last = math.floor(end / width)
    for when, b, t in events:
        index = math.floor(when / width)
        if first < index <= last:
            weight = 1.0
        elif index == first:
            weight = ((first + 1) * width - start) / width
        else:
            continue
        bad += weight * b
        total += weight * t
    return bad, total


def test_whole_buckets_add_up_exactly() -> None:
    ring = BucketRing(60, 10)
    for minute in range(5):
        ring.add(T0 + minute * 60 + 1, bad=minute, total=10)
    # (T0 - 1, T0 + 299] starts in the (empty) bucket before T0: all five count fully.
    assert ring.window(T0 - 1, T0 + 299) == (0 + 1 + 2 + 3 + 4, 50)
    assert ring.window(T0 + 59.999, T0 + 299) == pytest.approx((1 + 2 + 3 + 4, 40), abs=1e-3)


def test_the_first_bucket_counts_by_the_fraction_inside_the_window() -> None:
    ring = BucketRing(60, 10)
    ring.add(T0 + 10, bad=6, total=60)
    ring.add(T0 + 70, bad=0, total=60)
    bad, total = ring.window(T0 + 15, T0 + 100)  # 3/4 of the first bucket
    assert bad == pytest.approx(4.5)
    assert total == pytest.approx(45 + 60)


def test_old_buckets_are_forgotten_as_the_ring_turns() -> None:
    ring = BucketRing(60, 3)
    ring.add(T0, 1, 1)
    ring.add(T0 + 60, 1, 2)
    ring.add(T0 + 120, 1, 3)
    assert ring.window(T0 - 1000, T0 + 179) == (3, 6)
    ring.add(T0 + 180, 0, 4)  # reuses the slot of T0
    assert ring.get(ring.index(T0)) == (0.0, 0.0)
    assert ring.window(T0 - 1000, T0 + 239) == (2, 9)  # 2+3+4 total, T0 gone
    assert ring.add(T0, 5, 5) is None  # too old to count
    # A jump far ahead clears everything.
    ring.add(T0 + 10_000, 0, 1)
    assert list(ring.buckets()) == [(ring.index(T0 + 10_000), 0.0, 1.0)]


def test_late_events_within_reach_still_count() -> None:
    ring = BucketRing(60, 5)
    ring.add(T0 + 200, 0, 1)
    assert ring.add(T0 + 10, 1, 1) == ring.index(T0 + 10)
    assert ring.window(T0 - 1, T0 + 299) == (1, 2)


def test_windows_across_the_wrap_match_brute_force() -> None:
    rng = random.Random(7)
    width, size = 60, 50
    ring = BucketRing(width, size)
    events: list[tuple[float, float, float]] = []
    when = T0
    for _ in range(2000):
        when += rng.uniform(0, 20)
        bad = float(rng.random() < 0.1)
        ring.add(when, bad, 1.0)
        events.append((when, bad, 1.0))
    now = when
    kept = [e for e in events if math.floor(e[0] / width) > ring.index(now) - size]
    for seconds in (300, 1800, 2940):
        assert ring.window(now - seconds, now) == pytest.approx(
            brute_force(kept, now - seconds, now, width), abs=1e-9
        ), seconds


def test_set_restores_and_window_of_an_empty_ring() -> None:
    ring = BucketRing(3600, 4)
    assert ring.window(T0, T0 + 10) == (0.0, 0.0)
    assert ring.oldest() is None
    assert ring.set(ring.index(T0), 2, 20)
    assert ring.get(ring.index(T0)) == (2, 20)
    assert ring.oldest() == ring.index(T0) - 3
    assert not ring.set(ring.index(T0) - 10, 1, 1)
    with pytest.raises(ValueError):
        BucketRing(0, 1)
