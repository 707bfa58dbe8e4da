"""The SLI engine's embedded store: window buckets in SQLite, so a restart keeps them.

One file, ``<state_dir>/slo.sqlite3``, in WAL mode, holds per (SLO, region) the bad and
total events of each time bucket the engine keeps (1-minute buckets for the last 3 days,
1-hour buckets for the period). The engine writes in batches from a worker thread; each
batch is one transaction.

Guarantees (see ``docs/slos.md``, "Restarts"):

- **No double counting.** A batch writes each changed bucket's *absolute* counts (not
  increments), so writing a batch twice, or a batch that was cut short by a crash and
  rolled back, never adds events twice. At start the engine reads the buckets back and
  counts on from there. A lock on ``slo.lock`` keeps a second exporter off the same
  ``state_dir`` (two writers of absolute counts would overwrite each other).
- **Bounded loss.** Events counted after the last committed batch are lost when the
  process dies: at most one flush interval's worth. Probe results are gone with them;
  what ingest sources read is not: their read positions are *cursors* committed in the
  same transaction as the counts they led to, so after a crash the lines after the
  committed position are read and counted again, exactly once. Webhook event ids are
  committed with the counts of their events too, and a webhook is answered only after
  that commit: an event the registry was told is received is in the store, and one it
  resends is known.
- **Bounded size.** Buckets older than the engine keeps are deleted with each batch, and
  SLOs and regions no longer configured when the store is opened; an SLO whose SLI
  changed (kind, probe or threshold) starts from empty, since old counts measured
  something else.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import sqlite3
import threading
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

__all__ = [
    "STORE_FILE",
    "BucketRow",
    "SLOStore",
    "StoreBatch",
    "StoreError",
    "StoredTarget",
    "read_buckets",
]

STORE_FILE = "slo.sqlite3"
"""The store's file name inside ``state_dir``."""

SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS targets (
    target TEXT PRIMARY KEY,
    sli TEXT NOT NULL,
    last_event REAL
);
CREATE TABLE IF NOT EXISTS cursors (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS seen (
    source TEXT NOT NULL,
    seq INTEGER NOT NULL,
    id TEXT NOT NULL,
    PRIMARY KEY (source, seq)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS buckets (
    target TEXT NOT NULL,
    width INTEGER NOT NULL,
    idx INTEGER NOT NULL,
    bad REAL NOT NULL,
    total REAL NOT NULL,
    PRIMARY KEY (target, width, idx)
) WITHOUT ROWID;
"""

BucketRow = tuple[str, int, int, float, float]
"""``(target, width, index, bad, total)``: one bucket's absolute counts."""


def _rollback(db: sqlite3.Connection) -> None:
    """Roll back the open transaction, if any: when a write failed, SQLite may have
    rolled it back already, and the error to raise is the write's, not ``ROLLBACK``'s."""
    with contextlib.suppress(sqlite3.Error):
        db.execute("ROLLBACK")


class StoreError(Exception):
    """The store cannot be used (locked by another exporter, unreadable, newer schema)."""


@dataclass
class StoredTarget:
    """What the store holds for one (SLO, region).

    Attributes:
        buckets: ``(width, index, bad, total)`` rows.
        last_event: Unix time of the newest event counted.
        reset: True when the stored SLI differed from the configured one, so the old
            buckets were deleted.
    """

    buckets: list[tuple[int, int, float, float]] = field(default_factory=list)
    last_event: float | None = None
    reset: bool = False


@dataclass
class StoreBatch:
    """One write: bucket counts, newest event times, and what to prune.

    Attributes:
        rows: absolute counts of the buckets that changed.
        last_events: target → Unix time of its newest event.
        prune: ``(target, width, oldest index kept)``: older buckets are deleted.
        cursors: name → value: positions of the sources whose events the rows count.
        seen: ``(source, sequence number, event id)``: webhook event ids the rows count
            (remembered so that a resent event is known after a restart).
        forget: source → the lowest sequence number of its ids kept.
    """

    rows: list[BucketRow] = field(default_factory=list)
    last_events: dict[str, float] = field(default_factory=dict)
    prune: list[tuple[str, int, int]] = field(default_factory=list)
    cursors: dict[str, str] = field(default_factory=dict)
    seen: list[tuple[str, int, str]] = field(default_factory=list)
    forget: dict[str, int] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.rows or self.last_events or self.prune or self.cursors
                    or self.seen or self.forget)


class SLOStore:
    """The SQLite file of one exporter's SLO buckets.

    Args:
        directory: the ``state_dir``; created (mode 0700) if missing.

    Raises:
        StoreError: when another process holds the store, or it cannot be opened.
    """

    def __init__(self, directory: Path) -> None:
        self.path = directory / STORE_FILE
        self._lock = threading.Lock()
        try:
            directory.mkdir(parents=True, exist_ok=True, mode=0o700)
            self._lock_file = self._take_lock(directory / "slo.lock")
        except OSError as exc:
            raise StoreError(f"{directory}: cannot use the state directory: "
                             f"{exc.strerror or exc}") from None
        try:
            self._db = sqlite3.connect(
                self.path, check_same_thread=False, isolation_level=None, timeout=10
            )
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(_SCHEMA)
            self._check_version()
        except sqlite3.Error as exc:
            self._release()
            raise StoreError(f"{self.path}: cannot open the SLO store: {exc}") from None

    @staticmethod
    def _take_lock(path: Path) -> IO[str]:
        handle = path.open("a+", encoding="utf-8")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            handle.close()
            raise StoreError(
                f"{path.parent}: the state directory is in use by {holder}; give each "
                "exporter its own state_dir"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"registry-slo pid {os.getpid()}\n")
        handle.flush()
        return handle

    def _release(self) -> None:
        with contextlib.suppress(OSError):
            fcntl.flock(self._lock_file, fcntl.LOCK_UN)
            self._lock_file.close()

    def _check_version(self) -> None:
        row = self._db.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()
        if row is None:
            self._db.execute("INSERT INTO meta VALUES ('schema', ?)", (str(SCHEMA_VERSION),))
        elif int(row[0]) > SCHEMA_VERSION:
            raise sqlite3.DatabaseError(
                f"written by a newer registry-slo (schema {row[0]}, this one reads "
                f"{SCHEMA_VERSION})"
            )

    def load(self, target: str, sli: dict[str, object]) -> StoredTarget:
        """Read one target's buckets (deleting them when its SLI changed).

        Args:
            target: ``<slo>/<region>``.
            sli: the configured SLI (compared with the stored one).
        """
        fingerprint = json.dumps(sli, sort_keys=True)
        with self._lock:
            db = self._db
            row = db.execute(
                "SELECT sli, last_event FROM targets WHERE target = ?", (target,)
            ).fetchone()
            if row is None or row[0] != fingerprint:
                db.execute("BEGIN IMMEDIATE")
                try:
                    db.execute("DELETE FROM buckets WHERE target = ?", (target,))
                    db.execute(
                        "INSERT OR REPLACE INTO targets VALUES (?, ?, NULL)",
                        (target, fingerprint),
                    )
                    db.execute("COMMIT")
                except BaseException:
                    _rollback(db)
                    raise
                return StoredTarget(reset=row is not None)
            buckets = db.execute(
                "SELECT width, idx, bad, total FROM buckets WHERE target = ? "
                "ORDER BY width, idx",
                (target,),
            ).fetchall()
            return StoredTarget(buckets=buckets, last_event=row[1])

    def retain(self, targets: Collection[str]) -> list[str]:
        """Delete every target not in ``targets`` (SLOs or regions no longer configured).

        Returns:
            The targets deleted.
        """
        with self._lock:
            db = self._db
            stored = [r[0] for r in db.execute("SELECT target FROM targets")]
            gone = sorted(set(stored) - set(targets))
            if gone:
                db.execute("BEGIN IMMEDIATE")
                try:
                    for target in gone:
                        db.execute("DELETE FROM buckets WHERE target = ?", (target,))
                        db.execute("DELETE FROM targets WHERE target = ?", (target,))
                    db.execute("COMMIT")
                except BaseException:
                    _rollback(db)
                    raise
            return gone

    def save(self, batch: StoreBatch) -> None:
        """Write one batch in one transaction (all of it or, on error, none)."""
        if not batch:
            return
        with self._lock:
            db = self._db
            db.execute("BEGIN IMMEDIATE")
            try:
                db.executemany("INSERT OR REPLACE INTO buckets VALUES (?, ?, ?, ?, ?)",
                               batch.rows)
                db.executemany(
                    "UPDATE targets SET last_event = ? WHERE target = ?",
                    [(when, target) for target, when in batch.last_events.items()],
                )
                db.executemany(
                    "DELETE FROM buckets WHERE target = ? AND width = ? AND idx < ?",
                    batch.prune,
                )
                db.executemany("INSERT OR REPLACE INTO cursors VALUES (?, ?)",
                               batch.cursors.items())
                db.executemany("INSERT OR REPLACE INTO seen VALUES (?, ?, ?)", batch.seen)
                db.executemany("DELETE FROM seen WHERE source = ? AND seq < ?",
                               batch.forget.items())
                db.execute("COMMIT")
            except BaseException:
                _rollback(db)
                raise

    def cursor(self, name: str) -> str | None:
        """The committed value of the cursor ``name`` (``None``: never written)."""
        with self._lock:
            row = self._db.execute("SELECT value FROM cursors WHERE name = ?",
                                   (name,)).fetchone()
        return None if row is None else str(row[0])

    def seen(self, source: str, limit: int) -> list[tuple[int, str]]:
        """The newest ``limit`` event ids committed for ``source``: ``(sequence number,
        id)``, oldest first."""
        with self._lock:
            rows = self._db.execute(
                "SELECT seq, id FROM seen WHERE source = ? ORDER BY seq DESC LIMIT ?",
                (source, limit),
            ).fetchall()
        return [(int(seq), str(event_id)) for seq, event_id in reversed(rows)]

    def bucket_count(self) -> int:
        """How many buckets the file holds (for tests and diagnostics)."""
        with self._lock:
            row = self._db.execute("SELECT COUNT(*) FROM buckets").fetchone()
        return int(row[0])

    def rows(self, target: str) -> Sequence[tuple[int, int, float, float]]:
        """A target's ``(width, index, bad, total)`` rows, as stored."""
        with self._lock:
            return self._db.execute(
                "SELECT width, idx, bad, total FROM buckets WHERE target = ? "
                "ORDER BY width, idx",
                (target,),
            ).fetchall()

    def close(self) -> None:
        """Close the database and release the directory lock."""
        with self._lock:
            with contextlib.suppress(sqlite3.Error):
                self._db.close()
            self._release()


def read_buckets(directory: Path) -> dict[str, list[tuple[int, int, float, float]]]:
    """Every target's ``(width, index, bad, total)`` rows, read without taking the
    directory's lock: a report may read the store of a running exporter (SQLite's WAL
    lets one writer and readers work at once).

    Raises:
        StoreError: there is no store in ``directory``, or it cannot be read.
    """
    path = directory / STORE_FILE
    if not path.is_file():
        raise StoreError(f"{directory}: no SLO store ({STORE_FILE}) here: is it the "
                         "exporter's state_dir?")
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
        try:
            rows = db.execute("SELECT target, width, idx, bad, total FROM buckets "
                              "ORDER BY target, width, idx").fetchall()
        finally:
            db.close()
    except sqlite3.Error as exc:
        raise StoreError(f"{path}: cannot read the SLO store: {exc}") from None
    out: dict[str, list[tuple[int, int, float, float]]] = {}
    for target, width, index, bad, total in rows:
        out.setdefault(str(target), []).append((int(width), int(index), float(bad),
                                                float(total)))
    return out
