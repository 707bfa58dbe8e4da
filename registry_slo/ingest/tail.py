"""Follow log files through rotation, truncation and restarts; account every line once.

:class:`FileTailer` follows the files matching a source's globs and feeds their lines to
a :class:`~registry_slo.ingest.pipeline.SourcePipeline`. It polls (no inotify): each
:meth:`FileTailer.poll` rescans the globs, notices what changed and reads what is new.

Identity. A file is identified by its *fingerprint*: a hash of its first line (at most
``FINGERPRINT_BYTES``), not by its path or inode. A file is not read before it has a
complete first line (or that many bytes). So:

* rename-and-create rotation: the renamed file keeps its inode and fingerprint and is
  read to its end (through the open descriptor when the new name is outside the globs,
  for ``rotate_wait`` after it stops growing, as the writer may not have reopened its
  log yet); the new file has a new fingerprint and is read from its beginning;
* copytruncate: the copy has the old file's fingerprint, so when the globs match it
  (``registry.log*``), reading goes on *in the copy* at the same offset and nothing is
  read twice; the truncated original is new content, read from its beginning. Lines
  written between the last poll and the truncation are lost when the globs do not
  match the copy (logrotate's own warning about copytruncate);
* truncation in place (``truncate``, ``> file``): the file is shorter than the read
  position, or its first line changed: it is read again from the beginning as new
  content;
* deletion: the open descriptor is read to its end, then closed after ``rotate_wait``;
* a reused inode (a file deleted, then a new one created with the same inode number)
  has another first line, hence another fingerprint: it is never taken for the old
  file, neither while running nor through a checkpoint after a restart.

A first line shared by two different files (a constant header) defeats the fingerprint:
they are taken for one file. Registry logs begin with a timestamped line.

Checkpoints (:mod:`registry_slo.ingest.checkpoint`) map fingerprints to the offset just
after the last *accounted* line: the pipeline is flushed to the sink before an offset
moves, and offsets are saved every ``checkpoint_interval`` and at :meth:`close`, with
the parser's state after those lines when it keeps one (a garbage collector's run in
progress). After each poll the parser may end a unit that went quiet
(:meth:`~registry_slo.ingest.pipeline.SourcePipeline.settle`).
"""

from __future__ import annotations

import contextlib
import fnmatch
import glob
import hashlib
import os
import stat
import time
from collections import Counter
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Literal

import structlog

from registry_slo.ingest.checkpoint import Checkpoint, CheckpointStore
from registry_slo.ingest.lines import LineSplitter
from registry_slo.ingest.pipeline import SourcePipeline

__all__ = ["FINGERPRINT_BYTES", "FileTailer", "fingerprint"]

log = structlog.get_logger("registry_slo.ingest")

FINGERPRINT_BYTES = 1024
"""At most this many bytes of the first line identify a file."""

CHUNK_BYTES = 1 << 20


def fingerprint(fd: int) -> str | None:
    """The fingerprint of an open file: a hash of its first line (at most
    :data:`FINGERPRINT_BYTES`), or ``None`` while it has no complete first line."""
    head = os.pread(fd, FINGERPRINT_BYTES, 0)
    end = head.find(b"\n")
    if end >= 0:
        head = head[: end + 1]
    elif len(head) < FINGERPRINT_BYTES:
        return None
    return hashlib.blake2b(head, digest_size=16).hexdigest()


@dataclass
class _Followed:
    fd: int
    dev: int
    ino: int
    path: str
    fingerprint: str | None
    splitter: LineSplitter
    offset: int = 0  # bytes accounted
    reachable: bool = True
    last_growth: float = field(default_factory=time.monotonic)
    initial_size: int | None = None  # size at the first scan (read_from: end)

    @property
    def key(self) -> tuple[int, int]:
        return self.dev, self.ino


class FileTailer:
    """Follow one source's files (see the module docstring).

    Args:
        paths: absolute file names or globs.
        pipeline: where lines go.
        store: the source's checkpoint file (``None``: no checkpoints).
        read_from: where to start in files found at the first scan without a checkpoint.
        max_line_bytes: longer lines are rejected.
        exclude: file name globs never read.
        rotate_wait: seconds a file outside the globs is still read after it stops growing.
        checkpoint_interval: seconds between checkpoint writes.
        read_budget: bytes read per poll over all files, so that one big backlog lets
            the other sources (and the event loop) have their turn.
        clock: monotonic clock (tests).
    """

    def __init__(
        self,
        paths: Sequence[str],
        pipeline: SourcePipeline,
        store: CheckpointStore | None,
        *,
        read_from: Literal["beginning", "end"] = "end",
        max_line_bytes: int = 64 << 10,
        exclude: Sequence[str] = (),
        rotate_wait: float = 10.0,
        checkpoint_interval: float = 1.0,
        read_budget: int = 16 << 20,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.paths = tuple(paths)
        self.pipeline = pipeline
        self.store = store
        self.read_from = read_from
        self.max_line_bytes = max_line_bytes
        self.exclude = tuple(exclude)
        self.rotate_wait = rotate_wait
        self.checkpoint_interval = checkpoint_interval
        self.read_budget = read_budget
        self._clock = clock
        self._files: dict[tuple[int, int], _Followed] = {}
        # Loaded at the first poll: a checkpoint kept in the SLO store can be read only
        # once the exporter has opened it.
        self._saved: dict[str, Checkpoint] = {}
        self._loaded = False
        self._fresh = True
        self._first_scan = True
        self._dirty = False
        self._last_save = clock()
        self.events: Counter[str] = Counter()
        """File events so far: ``opened``, ``rotated`` (renamed away or deleted, read
        to its end), ``truncated``, ``copy_followed`` (copytruncate), ``copy_not_found``
        (a truncated file with no copy in the globs: what was written after the last
        read, if anything, is lost), ``closed``."""

    # -- public -------------------------------------------------------------------------

    @property
    def files(self) -> int:
        """Files currently open."""
        return len(self._files)

    @property
    def lag_bytes(self) -> int:
        """Bytes written to the followed files and not read yet."""
        total = 0
        for f in self._files.values():
            with contextlib.suppress(OSError):
                total += max(0, os.fstat(f.fd).st_size - f.splitter.position)
        return total

    def positions(self) -> dict[str, tuple[str, int]]:
        """Accounted offset of each followed file, by fingerprint: ``(path, offset)``."""
        return {
            f.fingerprint: (f.path, f.offset) for f in self._files.values() if f.fingerprint
        }

    def poll(self) -> bool:
        """Rescan the globs and read what is new (up to the read budget).

        Returns:
            ``True`` when the budget ran out with data left to read.
        """
        if not self._loaded:
            self._load()
        self._scan()
        budget = self.read_budget
        for f in sorted(self._files.values(), key=lambda f: f.path):
            if f.fingerprint is None:
                continue
            budget -= self._read(f, budget)
            if budget <= 0:
                break
        self._retire()
        if self.pipeline.settle(time.time()):
            self._dirty = True
        if self._dirty and self._clock() - self._last_save >= self.checkpoint_interval:
            self.save()
        return budget <= 0

    def _load(self) -> None:
        self._loaded = True
        if self.store is None:
            self.pipeline.restore(None)
            return
        # read_from applies to a first start only: once a checkpoint exists, files
        # without an entry appeared while we were away and are read from the beginning.
        self._fresh = not self.store.exists()
        self._saved = self.store.load()
        self.pipeline.restore(self.store.parser_state)
        if self.pipeline.stateful is not None and self.store.parser_state is None:
            self._dirty = True  # keep what a first start decided (when it began watching)

    def _hold(self) -> AbstractContextManager[object]:
        return self.store.hold() if self.store is not None else contextlib.nullcontext()

    def _save_chunk(self) -> None:
        # A checkpoint committed with the counts (a cursor) follows every chunk; a file
        # is written every checkpoint_interval.
        if self.store is not None and self.store.per_chunk:
            self.save()

    def save(self) -> None:
        """Write the checkpoint now (only positions already accounted)."""
        if self.store is None or not self._loaded:
            return
        now = time.time()
        entries = dict(self._saved)
        for f in self._files.values():
            if f.fingerprint is not None:
                entries[f.fingerprint] = Checkpoint(f.offset, f.path, f.dev, f.ino, now)
        self.store.save(entries, self.pipeline.snapshot())
        self._saved = entries
        self._dirty = False
        self._last_save = self._clock()

    def close(self) -> None:
        """Save the checkpoint and close every file."""
        self.pipeline.flush()
        self.save()
        for f in list(self._files.values()):
            self._close(f)

    # -- scanning -----------------------------------------------------------------------

    def _matches(self) -> dict[tuple[int, int], tuple[str, os.stat_result]]:
        found: dict[tuple[int, int], tuple[str, os.stat_result]] = {}
        for pattern in self.paths:
            for path in sorted(glob.glob(pattern)):
                name = os.path.basename(path)
                if any(fnmatch.fnmatch(name, ex) for ex in self.exclude):
                    continue
                try:
                    st = os.stat(path)
                except OSError:
                    continue
                if stat.S_ISREG(st.st_mode):
                    found.setdefault((st.st_dev, st.st_ino), (path, st))
        return found

    def _scan(self) -> None:
        found = self._matches()
        orphans: dict[str, _Followed] = {}
        for key, f in list(self._files.items()):
            hit = found.get(key)
            if hit is None:
                if f.reachable:
                    f.reachable = False
                    self.events["rotated"] += 1
                    log.info("ingest: file renamed away or deleted, reading to its end",
                             source=self.pipeline.source, path=f.path)
                continue
            path, st = hit
            f.path, f.reachable = path, True
            if f.fingerprint is None:
                continue
            if st.st_size < f.splitter.position or fingerprint(f.fd) != f.fingerprint:
                # Truncated in place: this inode now holds new content. What was not read
                # yet may live on in a copy (copytruncate), found below by fingerprint.
                self.events["truncated"] += 1
                del self._files[key]
                orphans[f.fingerprint] = f
                log.info("ingest: file truncated", source=self.pipeline.source, path=path)
        for key, (path, _) in found.items():
            if key in self._files:
                continue
            try:
                fd = os.open(path, os.O_RDONLY)
            except OSError as exc:
                log.warning("ingest: cannot open", source=self.pipeline.source, path=path,
                            error=exc.strerror)
                continue
            fst = os.fstat(fd)
            if (fst.st_dev, fst.st_ino) != key:  # replaced between stat and open
                os.close(fd)
                continue
            fp = fingerprint(fd)
            orphan = orphans.get(fp) if fp is not None else None
            if orphan is not None and orphan.key != key:  # another inode: the copy
                del orphans[orphan.fingerprint or ""]
                self._adopt(orphan, fd, fst, path)
                continue
            if fp is not None and self._followed(fp):
                os.close(fd)  # a copy of a file already followed
                continue
            f = _Followed(fd, fst.st_dev, fst.st_ino, path, None, LineSplitter(self.max_line_bytes))
            if self._first_scan and self._fresh:
                f.initial_size = fst.st_size
            self._files[key] = f
            self.events["opened"] += 1
            if fp is not None:
                self._start(f, fp, fst.st_size)
        for f in list(self._files.values()):
            if f.fingerprint is None and f.reachable:
                fp = fingerprint(f.fd)
                if fp is not None and self._followed(fp):
                    self._close(f)  # became a copy of a file already followed
                elif fp is not None:
                    self._start(f, fp, os.fstat(f.fd).st_size)
        for orphan in orphans.values():
            self.events["copy_not_found"] += 1
            log.warning("ingest: truncated file's unread rest not found (is the rotated "
                        "copy outside the globs?)", source=self.pipeline.source,
                        path=orphan.path)
            self._close(orphan, keep=True)
        self._first_scan = False

    def _followed(self, fp: str) -> bool:
        return any(f.fingerprint == fp for f in self._files.values())

    def _adopt(self, orphan: _Followed, fd: int, st: os.stat_result, path: str) -> None:
        """Go on reading a truncated file's content in its copy."""
        with contextlib.suppress(OSError):
            os.close(orphan.fd)
        orphan.fd, orphan.dev, orphan.ino, orphan.path = fd, st.st_dev, st.st_ino, path
        orphan.reachable = True
        self._files[orphan.key] = orphan
        self.events["copy_followed"] += 1
        log.info("ingest: following a truncated file's copy", source=self.pipeline.source,
                 path=path, offset=orphan.offset)

    def _start(self, f: _Followed, fp: str, size: int) -> None:
        """Decide where a newly identified file is read from."""
        f.fingerprint = fp
        saved = self._saved.get(fp)
        if saved is not None:
            offset = saved.offset if saved.offset <= size else 0
            if saved.offset > size:
                self.events["truncated"] += 1
            f.offset = offset
            f.splitter = LineSplitter(self.max_line_bytes, offset)
            return
        if self.read_from == "end" and f.initial_size:
            offset = min(f.initial_size, size)
            f.offset = offset
            f.splitter = LineSplitter(self.max_line_bytes, offset)
            if os.pread(f.fd, 1, offset - 1) != b"\n":
                f.splitter.skip_to_next_line()
            self._dirty = True
            return
        f.offset = 0
        f.splitter = LineSplitter(self.max_line_bytes, 0)
        self._dirty = True

    # -- reading ------------------------------------------------------------------------

    def _read(self, f: _Followed, budget: int) -> int:
        try:
            size = os.fstat(f.fd).st_size
        except OSError:
            return 0
        read = 0
        pipeline = self.pipeline
        splitter = f.splitter
        while splitter.position < size and read < budget:
            want = min(CHUNK_BYTES, size - splitter.position, budget - read)
            data = os.pread(f.fd, want, splitter.position)
            if not data:
                break
            read += len(data)
            with self._hold():
                cut = splitter.feed(data)
                pipeline.lines(cut.lines)
                pipeline.too_long(cut.too_long)
                pipeline.consumed(len(data))
                pipeline.flush()  # accounted before the offset moves
                if cut.end is not None:
                    f.offset = cut.end
                    self._dirty = True
                    self._save_chunk()
        if read:
            f.last_growth = self._clock()
        return read

    def _retire(self) -> None:
        """Close files outside the globs that are read to their end and idle."""
        now = self._clock()
        for f in list(self._files.values()):
            if f.reachable:
                continue
            try:
                size = os.fstat(f.fd).st_size
            except OSError:
                size = f.splitter.position
            if size > f.splitter.position or now - f.last_growth < self.rotate_wait:
                continue
            with self._hold():
                if f.fingerprint is not None:
                    cut = f.splitter.finish()  # the writer is gone: a last unfinished line
                    self.pipeline.lines(cut.lines)
                    self.pipeline.too_long(cut.too_long)
                    self.pipeline.flush()
                    if cut.end is not None:
                        f.offset = cut.end
                        self._dirty = True
                self._close(f, keep=True)
                self._save_chunk()

    def _close(self, f: _Followed, keep: bool = False) -> None:
        if keep and f.fingerprint is not None and self.store is not None:
            self._saved[f.fingerprint] = Checkpoint(f.offset, f.path, f.dev, f.ino, time.time())
            self._dirty = True
        with contextlib.suppress(OSError):
            os.close(f.fd)
        if self._files.get(f.key) is f:
            del self._files[f.key]
        self.events["closed"] += 1
