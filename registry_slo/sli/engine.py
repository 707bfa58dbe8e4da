"""The exporter's own SLI engine: good and bad events per SLO and region, in time buckets.

The engine is an observation sink (see :class:`~registry_slo.observation.Observation`):
the probe scheduler hands it every probe result and the ingest sources every request
they read, and it counts each one into the SLOs whose SLI it belongs to, for the SLO's
region:

- ``probe_success`` / ``auth_success``: a run of the SLI's probe; bad when it failed.
- ``probe_latency``: a run of the SLI's probe; bad when it took longer than the
  threshold (failed runs count by their duration, as in the generated rules).
- ``traffic_success``: a request of one of the SLI's operations read by one of the
  target's ingest sources (log lines, notifications); bad when it failed for one of the
  SLI's ``errors``.
- ``traffic_latency``: likewise, for requests whose source logged a duration; bad when
  it took longer than the threshold.
- ``replication_lag``: not a probe result but a fraction of time: every
  ``lag_sample_interval`` the engine reads the region's replication lag (the
  :class:`~registry_slo.probes.heartbeat.LagTracker` behind
  ``registry_slo_replication_lag_seconds``) and counts one sample, bad when the lag of
  any source is above the threshold or unknown (no heartbeat seen yet).

An event counts at the moment it reaches the engine, as a Prometheus counter
increments when the probe finishes. Counts go into 1-minute buckets kept for the
longest alert window (3 days) and 1-hour buckets kept for the period
(:class:`~registry_slo.sli.buckets.BucketRing`); the windows 5m … 3d add up minute
buckets, the period adds up hour buckets. Error ratios, burn rates and the budget come
from :mod:`registry_slo.sli.windows`, the module the generated rules are built from.

Buckets are written to the :class:`~registry_slo.sli.store.SLOStore` every
``flush_interval`` from a worker thread, and read back at start. Ingest sources keep
their read positions in :class:`Cursor` objects of the engine: a position is written in
the same transaction as the counts of the lines before it, so a crash can neither lose
those lines' events nor count them twice.

A failed write is logged, counted (``on_store_error``) and retried with the next flush:
a full disk for a moment loses nothing. A store that fails ``max_failed_flushes`` flushes
in a row (3 by default: 3 s with log sources, 30 s without) is taken for gone (a
read-only or failing disk, a file replaced under the exporter): :meth:`SLIEngine.run`
raises :class:`~registry_slo.sli.store.StoreError`, so that the exporter stops and its
service manager restarts it, instead of serving SLO windows that are no longer kept. What
was committed before stays; the counts since are lost as in a crash, and ingest sources
read their lines again from the positions committed with them.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import threading
import time
from collections.abc import Awaitable, Callable, Iterable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import assert_never

import structlog

from registry_slo.config import (
    AuthSuccessSLI,
    ProbeLatencySLI,
    ProbeSuccessSLI,
    ReplicationLagSLI,
    SLOTarget,
    TrafficLatencySLI,
    TrafficSuccessSLI,
)
from registry_slo.observation import Observation
from registry_slo.sli.buckets import BucketRing
from registry_slo.sli.evaluation import SLOStatus, describe_sli, evaluate_target
from registry_slo.sli.history import (
    RATE_TIER,
    RATE_WINDOW,
    SHOWN,
    SLOHistory,
    burn_down,
    burn_rates,
)
from registry_slo.sli.store import SLOStore, StoreBatch, StoreError
from registry_slo.sli.windows import ALERT_WINDOWS, HOUR, MINUTE, slo_windows

__all__ = ["COARSE_WIDTH", "FINE_WIDTH", "MAX_FAILED_FLUSHES", "Cursor", "SLIEngine"]

log = structlog.get_logger("registry_slo.sli")

FINE_WIDTH = MINUTE
"""Seconds per bucket of the windows up to 3 days."""
COARSE_WIDTH = HOUR
"""Seconds per bucket of the period window."""
MAX_FAILED_FLUSHES = 3
"""Flushes in a row that may fail before :meth:`SLIEngine.run` gives the store up."""

Lag = Callable[[], float | None]


@dataclass
class _State:
    target: SLOTarget
    fine: BucketRing
    coarse: BucketRing
    last_event: float | None = None
    dirty: set[tuple[int, int]] = field(default_factory=set)  # (width, index)
    event_dirty: bool = False

    @classmethod
    def new(cls, target: SLOTarget) -> _State:
        longest = ALERT_WINDOWS[-1]
        return cls(
            target,
            # One bucket more than the window: its start falls inside a bucket.
            BucketRing(FINE_WIDTH, longest // FINE_WIDTH + 2),
            BucketRing(COARSE_WIDTH, math.ceil(target.slo.period_seconds / COARSE_WIDTH) + 2),
        )

    def ring(self, width: int) -> BucketRing:
        return self.fine if width == FINE_WIDTH else self.coarse

    def count(self, when: float, bad: bool) -> None:
        for ring in (self.fine, self.coarse):
            index = ring.add(when, 1.0 if bad else 0.0, 1.0)
            if index is not None:
                self.dirty.add((ring.width, index))
        if self.last_event is None or when > self.last_event:
            self.last_event = when
            self.event_dirty = True

    def window(self, seconds: int, now: float) -> tuple[float, float]:
        ring = self.fine if seconds <= ALERT_WINDOWS[-1] else self.coarse
        return ring.window(now - seconds, now)


class Cursor:
    """A named position (an ingest source's checkpoint) committed to the engine's store
    together with the counts of the events before it.

    Hand the events to :meth:`SLIEngine.observe` and write the cursor that follows them
    inside one ``with cursor.hold():``, so that a commit never has one without the other.
    """

    def __init__(self, engine: SLIEngine, name: str) -> None:
        self._engine = engine
        self.name = name

    def read(self) -> str | None:
        """The committed value (``None``: never committed, or no store open)."""
        store = self._engine.store
        return None if store is None else store.cursor(self.name)

    def write(self, value: str) -> None:
        """Stage ``value``: the engine's next flush commits it with the counts."""
        self._engine.stage_cursor(self.name, value)

    def hold(self) -> AbstractContextManager[object]:
        """Keep the engine from taking a snapshot to commit while held: observe the
        events of a chunk and write the cursor after them inside one ``with``, and a
        commit has either both or neither."""
        return self._engine._lock


class Journal:
    """A webhook source's event ids, committed to the engine's store with the counts of
    their events, and a way to wait for that commit before acknowledging them.

    Count the events with :meth:`SLIEngine.observe` and :meth:`remember` their ids inside
    one ``with journal.hold():``; then ``await journal.committed(timeout)`` and answer.
    """

    def __init__(self, engine: SLIEngine, source: str, capacity: int) -> None:
        self._engine = engine
        self.source = source
        self.capacity = capacity
        self._next: int | None = None

    def restore(self) -> list[str]:
        """The newest ``capacity`` ids committed, oldest first (none without a store)."""
        store = self._engine.store
        rows = [] if store is None else store.seen(self.source, self.capacity)
        self._next = rows[-1][0] + 1 if rows else 0
        return [event_id for _, event_id in rows]

    def remember(self, event_id: str) -> None:
        """Stage ``event_id`` for the next commit (nothing without a store)."""
        if self._engine.store is None:
            return
        if self._next is None:
            self.restore()
        assert self._next is not None
        seq, self._next = self._next, self._next + 1
        self._engine.stage_seen(self.source, seq, event_id, seq + 1 - self.capacity)

    def hold(self) -> AbstractContextManager[object]:
        """Keep the engine from taking a snapshot to commit while held."""
        return self._engine._lock

    async def committed(self, timeout: float) -> bool:
        """Wait until everything counted and remembered so far is committed.

        Returns:
            True once committed (at once without a store), False after ``timeout``
            seconds without a successful commit.
        """
        return await self._engine.wait_committed(timeout)


GROUP_COMMIT = 0.0
"""Seconds a commit that a waiting webhook asked for waits for others to join it. Zero:
it yields once, so answers ready in the same turn join, and those arriving while it runs
share the next. Waiting 10 ms halved webhook throughput (docs/benchmarks.md)."""


class SLIEngine:
    """Counts every SLO's events per region and evaluates its windows.

    Args:
        targets: the (SLO, region) pairs to track.
        state_dir: where the store lives; ``None`` keeps everything in memory only.
        flush_interval: seconds between two writes to the store.
        lag_sample_interval: seconds between two samples of replication lag.
        clock: the Unix time source (tests pass their own).
        on_store_error: called when a write to the store fails (it is logged, and the
            buckets are written with the next flush).
        max_failed_flushes: flushes in a row that may fail before :meth:`run` raises
            :class:`~registry_slo.sli.store.StoreError` (see the module docstring).
    """

    def __init__(
        self,
        targets: Iterable[SLOTarget],
        state_dir: Path | None = None,
        flush_interval: float = 10.0,
        lag_sample_interval: float = 15.0,
        clock: Callable[[], float] = time.time,
        on_store_error: Callable[[], object] | None = None,
        max_failed_flushes: int = MAX_FAILED_FLUSHES,
    ) -> None:
        self.state_dir = state_dir
        self.flush_interval = flush_interval
        self.lag_sample_interval = lag_sample_interval
        self.clock = clock
        self._states = [_State.new(t) for t in targets]
        self._by_probe: dict[tuple[str, str], list[_State]] = {}
        # (ingest source, operation) -> states; a source reads one region's traffic.
        self._by_traffic: dict[tuple[str, str], list[_State]] = {}
        self._lag_states: list[_State] = []
        for state in self._states:
            sli = state.target.slo.sli
            match sli:
                case ReplicationLagSLI():
                    self._lag_states.append(state)
                case TrafficSuccessSLI() | TrafficLatencySLI():
                    for source in state.target.sources:
                        for operation in sli.operations:
                            self._by_traffic.setdefault((source, operation), []).append(state)
                case ProbeSuccessSLI() | ProbeLatencySLI() | AuthSuccessSLI():
                    key = (state.target.region, sli.probe_name)
                    self._by_probe.setdefault(key, []).append(state)
                case _:
                    assert_never(sli)
        self._lags: dict[str, list[Lag]] = {}
        # Re-entrant: an ingest source holds it (Cursor.hold) across a chunk's
        # observations and its cursor, so that no flush falls in between.
        self._lock = threading.RLock()
        self._store: SLOStore | None = None
        self._cursors: dict[str, str] = {}  # staged, not committed yet
        self._seen: list[tuple[str, int, str]] = []  # staged webhook event ids
        self._forget: dict[str, int] = {}
        self._commit_waiters: list[asyncio.Future[None]] = []
        self._commit_soon = asyncio.Event()
        self._closed = False
        self.on_store_error = on_store_error
        self.max_failed_flushes = max_failed_flushes
        self._failed_flushes = 0  # in a row
        self._last_store_error: Exception | None = None

    @property
    def targets(self) -> list[SLOTarget]:
        """The tracked (SLO, region) pairs."""
        return [s.target for s in self._states]

    @property
    def store(self) -> SLOStore | None:
        """The open store, if any."""
        return self._store

    @property
    def persistent(self) -> bool:
        """Whether :meth:`open` opens a store (there are SLOs and a ``state_dir``)."""
        return self.state_dir is not None and bool(self._states)

    def cursor(self, name: str) -> Cursor:
        """The cursor ``name`` (see :class:`Cursor`); durable once :meth:`open` ran."""
        return Cursor(self, name)

    def stage_cursor(self, name: str, value: str) -> None:
        """Stage a cursor value for the next flush (see :class:`Cursor`)."""
        with self._lock:
            self._cursors[name] = value

    def journal(self, source: str, capacity: int) -> Journal:
        """The event-id journal of the webhook source ``source`` (see :class:`Journal`),
        keeping its newest ``capacity`` ids."""
        return Journal(self, source, capacity)

    def stage_seen(self, source: str, seq: int, event_id: str, keep_from: int) -> None:
        """Stage a webhook event id for the next flush, and forget ids of ``source``
        numbered below ``keep_from``."""
        with self._lock:
            self._seen.append((source, seq, event_id))
            if keep_from > 0:
                self._forget[source] = keep_from

    async def wait_committed(self, timeout: float) -> bool:
        """Wait for the next successful commit that starts after this call (asking for
        one now, not at the next flush interval).

        Returns:
            True once committed (at once when the engine keeps no store), False after
            ``timeout``, or at once when the engine has closed its store.
        """
        if self._store is None:
            return not self._closed  # closed: what is counted now is never committed
        waiter = asyncio.get_running_loop().create_future()
        self._commit_waiters.append(waiter)
        self._commit_soon.set()
        try:
            await asyncio.wait_for(asyncio.shield(waiter), timeout)
        except TimeoutError:
            return False
        return True

    # -- lifecycle ---------------------------------------------------------------------

    def open(self) -> None:
        """Open the store and restore the buckets it holds (nothing to do without SLOs
        or without a ``state_dir``).

        Raises:
            StoreError: when the store cannot be used (e.g. another exporter holds it).
        """
        if self.state_dir is None or not self._states or self._store is not None:
            return
        store = SLOStore(self.state_dir)
        restored = 0
        with self._lock:
            for state in self._states:
                stored = store.load(state.target.key, describe_sli(state.target.slo))
                if stored.reset:
                    log.warning("SLI definition changed: its stored windows start over",
                                slo=state.target.slo.name, region=state.target.region)
                for width, index, bad, total in stored.buckets:
                    if width in (FINE_WIDTH, COARSE_WIDTH) and state.ring(width).set(
                        index, bad, total
                    ):
                        restored += 1
                state.last_event = stored.last_event
            gone = store.retain([s.target.key for s in self._states])
        self._store = store
        log.info("SLO store opened", path=str(store.path), buckets_restored=restored,
                 targets=len(self._states), forgotten=gone or None)

    async def run(self, stop: asyncio.Event) -> None:
        """Sample replication lag and flush to the store until ``stop`` is set; then
        flush a last time and close the store.

        Args:
            stop: ends the engine's work when set.

        Raises:
            StoreError: the store failed ``max_failed_flushes`` flushes in a row (the
                store is closed all the same).
        """
        tasks: list[asyncio.Task[object]] = [asyncio.create_task(self._flush_loop(stop))]
        if self._lag_states:
            tasks.append(asyncio.create_task(
                self._every(self.lag_sample_interval, self._sample, stop)))
        stopped = asyncio.create_task(stop.wait())
        everything: list[asyncio.Task[object]] = [stopped, *tasks]
        try:
            await asyncio.wait(everything, return_when=asyncio.FIRST_COMPLETED)
            for task in tasks:
                if task.done():
                    task.result()  # raises what ended it early
        finally:
            for task in everything:
                task.cancel()
            await asyncio.gather(*everything, return_exceptions=True)
            await asyncio.to_thread(self.close)

    @staticmethod
    async def _every(
        interval: float, action: Callable[[], Awaitable[object]], stop: asyncio.Event
    ) -> None:
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), interval)
            if not stop.is_set():
                await action()

    async def _flush_loop(self, stop: asyncio.Event) -> None:
        """Flush every ``flush_interval``, and soon after a webhook waits for a commit."""
        while not stop.is_set():
            waits = [asyncio.ensure_future(stop.wait()),
                     asyncio.ensure_future(self._commit_soon.wait())]
            try:
                await asyncio.wait(waits, timeout=self.flush_interval,
                                   return_when=asyncio.FIRST_COMPLETED)
            finally:
                for wait in waits:
                    wait.cancel()
            if stop.is_set():
                return
            if self._commit_soon.is_set():
                await asyncio.sleep(GROUP_COMMIT)
            await self._flush()

    async def _flush(self) -> None:
        # Taken before the snapshot: everything these waiters counted is in it.
        self._commit_soon.clear()
        waiters, self._commit_waiters = self._commit_waiters, []
        written = await asyncio.to_thread(self._flush_ok)
        for waiter in waiters:
            if written and not waiter.done():
                waiter.set_result(None)
        if not written:
            self._commit_waiters[:0] = [w for w in waiters if not w.done()]
        store = self._store
        if self._failed_flushes >= self.max_failed_flushes and store is not None:
            raise StoreError(
                f"{store.path}: the SLO store could not be written "
                f"{self._failed_flushes} times in a row (last: {self._last_store_error})"
            )

    async def _sample(self) -> None:
        self.sample_lag()

    def close(self) -> None:
        """Write what is not written yet and close the store."""
        store = self._store
        if store is None:
            return
        self.flush()
        self._store = None
        self._closed = True
        store.close()

    # -- counting ----------------------------------------------------------------------

    def observe(self, observation: Observation) -> None:
        """Count a probe result or an ingested request into the SLOs it belongs to (an
        observation sink; callable from any thread)."""
        o = observation
        if o.source == "probe":
            states = self._by_probe.get((o.region, o.operation))
        else:
            states = self._by_traffic.get((o.source, o.operation))
        if not states:
            return
        now = self.clock()
        with self._lock:
            for state in states:
                if state.target.region != o.region:
                    continue
                sli = state.target.slo.sli
                # Only probe and traffic SLIs are indexed by observation.
                assert not isinstance(sli, ReplicationLagSLI)
                bad = sli.bad(o)
                if bad is not None:
                    state.count(now, bad)

    def track_lag(self, region: str, lag: Lag) -> None:
        """Read ``lag()`` (seconds, NaN when unknown, ``None`` while not read yet) as one
        of ``region``'s replication lags; a region's lag is the largest of them."""
        self._lags.setdefault(region, []).append(lag)

    def sample_lag(self) -> None:
        """Count one sample of every replication-lag SLO whose region has a lag source."""
        now = self.clock()
        with self._lock:
            for state in self._lag_states:
                sli = state.target.slo.sli
                assert isinstance(sli, ReplicationLagSLI)
                readings = [lag() for lag in self._lags.get(state.target.region, ())]
                known = [r for r in readings if r is not None]
                if not known:
                    continue  # nothing read yet: no sample, neither good nor bad
                state.count(now, sli.bad_sample(known))

    # -- reading -----------------------------------------------------------------------

    def evaluate(self, now: float | None = None) -> list[SLOStatus]:
        """Every target's windows, burn rates and budget at ``now`` (default: the clock)."""
        when = self.clock() if now is None else now
        out = []
        with self._lock:
            for state in self._states:
                slo = state.target.slo
                counts = {w: state.window(w, when) for w in slo_windows(slo.period_seconds)}
                out.append(evaluate_target(slo, state.target.region, when, counts,
                                           state.last_event))
        return out

    def history(self, now: float | None = None) -> list[SLOHistory]:
        """Every target's budget burn-down over its current period and its recent burn
        rate (:mod:`registry_slo.sli.history`), at ``now`` (default: the clock)."""
        when = self.clock() if now is None else now
        copies = []
        with self._lock:
            for state in self._states:
                period = state.target.slo.period_seconds
                coarse, fine = state.coarse, state.fine
                first = coarse.index(when - period)
                hours = []
                for index in range(first, coarse.index(when) + 1):
                    bad, total = coarse.get(index)
                    if index == first:  # partly inside the period
                        inside = ((index + 1) * coarse.width - (when - period)) / coarse.width
                        bad, total = bad * inside, total * inside
                    hours.append((min((index + 1) * coarse.width, when), bad, total))
                oldest = fine.index(when - SHOWN) - RATE_WINDOW // fine.width
                minutes = [fine.get(i) for i in range(oldest, fine.index(when))]
                copies.append((state.target, hours, oldest * fine.width, minutes))
        out = []
        for target, hours, minutes_start, minutes in copies:
            slo = target.slo
            out.append(SLOHistory(
                slo, target.region, when - slo.period_seconds, when,
                burn_down(hours, slo.objective_ratio),
                burn_rates(minutes_start, FINE_WIDTH, minutes, slo.objective_ratio,
                           when - SHOWN),
                RATE_TIER.factor(slo.period_seconds),
            ))
        return out

    # -- persistence -------------------------------------------------------------------

    def _batch(self) -> StoreBatch:
        batch = StoreBatch()
        for state in self._states:
            key = state.target.key
            for width, index in sorted(state.dirty):
                bad, total = state.ring(width).get(index)
                batch.rows.append((key, width, index, bad, total))
            state.dirty.clear()
            if state.event_dirty and state.last_event is not None:
                batch.last_events[key] = state.last_event
                state.event_dirty = False
            for ring in (state.fine, state.coarse):
                oldest = ring.oldest()
                if oldest is not None:
                    batch.prune.append((key, ring.width, oldest))
        batch.cursors, self._cursors = self._cursors, {}
        batch.seen, self._seen = self._seen, []
        batch.forget, self._forget = self._forget, {}
        return batch

    def _flush_ok(self) -> bool:
        failed = self._failed_flushes
        self.flush()
        return self._store is not None and self._failed_flushes <= failed

    def flush(self) -> int:
        """Write the buckets changed since the last flush (blocking: call it from a
        worker thread).

        Returns:
            The number of buckets written.
        """
        store = self._store
        if store is None:
            return 0
        with self._lock:
            batch = self._batch()
        try:
            store.save(batch)
        except Exception as exc:
            self._failed_flushes += 1
            self._last_store_error = exc
            if self.on_store_error is not None:
                self.on_store_error()
            log.exception("could not write the SLO store; retrying at the next flush",
                          path=str(store.path), failed_in_a_row=self._failed_flushes)
            with self._lock:
                self._requeue(batch)
            return 0
        self._failed_flushes = 0
        return len(batch.rows)

    def _requeue(self, batch: StoreBatch) -> None:
        by_key = {s.target.key: s for s in self._states}
        for key, width, index, _, _ in batch.rows:
            by_key[key].dirty.add((width, index))
        for key in batch.last_events:
            by_key[key].event_dirty = True
        for name, value in batch.cursors.items():
            self._cursors.setdefault(name, value)  # unless a newer value is staged
        self._seen[:0] = batch.seen
        for source, keep_from in batch.forget.items():
            self._forget[source] = max(keep_from, self._forget.get(source, 0))
