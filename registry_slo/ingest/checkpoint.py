"""Read positions that survive restarts, written atomically.

One JSON file per source (``<checkpoint_dir>/<source>.json``) maps each file
*fingerprint* to the byte offset just after the last line whose accounting was handed
to the sink; for a parser that follows units spanning lines (a garbage collector's runs)
it also holds the parser's state after those lines, so the two never disagree. It is
replaced atomically: written to a temporary file in the same directory, flushed and
``fsync``-ed, renamed over the old one, and the directory ``fsync``-ed, so after a
crash the file is either the previous checkpoint or the new one, never a mix.

Guarantee (see ``docs/ingest.md``): a position is recorded only after the lines before
it were accounted, so no line is ever skipped. After a clean stop the last checkpoint
covers every line read, and a restart neither loses nor repeats a line. After a crash,
the lines read since the last checkpoint (at most ``checkpoint_interval`` worth) are
read again and counted again by the new process, whose counters start from zero: at
least once, never lost.

When the exporter keeps SLO windows (an SLO store), the checkpoint is not a file but a
*cursor* of that store (:class:`Cursor`), committed in the same transaction as the SLO
counts of the lines before it: for the SLI engine, exactly once even across a crash. A
checkpoint file left from before is read once, and removed once the cursor holds it.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import time
from contextlib import AbstractContextManager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

import structlog

__all__ = ["Checkpoint", "CheckpointStore", "Cursor"]

log = structlog.get_logger("registry_slo.ingest")

_VERSION = 1


@dataclass(frozen=True)
class Checkpoint:
    """Where reading stopped in one file.

    Attributes:
        offset: bytes of the file already accounted.
        path: where the file was last seen (informational).
        dev: its device number when last seen.
        ino: its inode number when last seen.
        updated: Unix time of the last update.
    """

    offset: int
    path: str
    dev: int
    ino: int
    updated: float


class Cursor(Protocol):
    """Where a checkpoint can live instead of a file: a value committed elsewhere (the
    SLI engine's :class:`~registry_slo.sli.engine.Cursor`)."""

    def read(self) -> str | None:
        """The committed value, or ``None``."""
        ...

    def write(self, value: str) -> None:
        """Replace the value (committed when the owner commits)."""
        ...

    def hold(self) -> AbstractContextManager[object]:
        """Keep the owner from committing while held (see :meth:`CheckpointStore.hold`)."""
        ...


class CheckpointStore:
    """One source's checkpoint: a file, or a :class:`Cursor` (the file then only
    migrates an older checkpoint).

    Args:
        path: the JSON file.
        retention: seconds a file no longer seen is remembered.
        cursor: where to keep the checkpoint instead of the file.
    """

    def __init__(
        self, path: Path, retention: float = 7 * 86400, cursor: Cursor | None = None
    ) -> None:
        self.path = path
        self.retention = retention
        self.cursor = cursor
        self._file_gone = False
        self.parser_state: dict[str, Any] | None = None
        """The parser state the loaded checkpoint held (set by :meth:`load`)."""

    @property
    def per_chunk(self) -> bool:
        """Whether the checkpoint must be saved after every chunk (a cursor: it is
        committed with the counts, which a commit takes at any moment)."""
        return self.cursor is not None

    def hold(self) -> AbstractContextManager[object]:
        """Hold while a chunk's lines are accounted and the checkpoint after them is
        saved: with a cursor, no commit falls in between (a file needs nothing)."""
        return self.cursor.hold() if self.cursor is not None else contextlib.nullcontext()

    def exists(self) -> bool:
        """Whether a checkpoint was ever saved (else ``read_from`` applies)."""
        return (self.cursor is not None and self.cursor.read() is not None) or \
            self.path.exists()

    def load(self) -> dict[str, Checkpoint]:
        """The saved checkpoints by fingerprint (empty when there is none usable).

        A damaged checkpoint is logged and set aside (a file is renamed ``*.corrupt``),
        so the source starts as on a first start rather than not at all. The parser
        state it holds, if any, is left in :attr:`parser_state`.
        """
        self.parser_state = None
        if self.cursor is not None:
            value = self.cursor.read()
            if value is not None:
                try:
                    files, self.parser_state = _decode(value)
                except (ValueError, TypeError, KeyError, AttributeError) as exc:
                    log.error("ingest: unusable checkpoint ignored", path=str(self.path),
                              error=str(exc))
                    return {}
                return files
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return {}
        try:
            files, self.parser_state = _decode(text)
            return files
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            aside = self.path.with_suffix(".corrupt")
            with contextlib.suppress(OSError):
                os.replace(self.path, aside)
            log.error("ingest: unusable checkpoint set aside", path=str(self.path),
                      moved_to=str(aside), error=str(exc))
            return {}

    def save(self, entries: dict[str, Checkpoint],
             parser_state: dict[str, Any] | None = None) -> None:
        """Save the checkpoint: stage it in the cursor, or replace the file atomically
        (temp file, fsync, rename, fsync dir).

        Entries not updated within ``retention`` are dropped. ``parser_state`` (the
        parser's state after the lines the entries cover) is saved with them.
        """
        now = time.time()
        kept = {fp: asdict(cp) for fp, cp in entries.items() if now - cp.updated <= self.retention}
        document: dict[str, Any] = {"version": _VERSION, "files": kept}
        if parser_state is not None:
            document["parser"] = parser_state
        payload = json.dumps(document, sort_keys=True, indent=1)
        if self.cursor is not None:
            if not self._file_gone and self.cursor.read() is not None:
                # Committed: a file from before is obsolete.
                with contextlib.suppress(FileNotFoundError):
                    self.path.unlink()
                self._file_gone = True
            self.cursor.write(payload)
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", dir=self.path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(payload)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        dir_fd = os.open(self.path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def _decode(text: str) -> tuple[dict[str, Checkpoint], dict[str, Any] | None]:
    data = json.loads(text)
    if data.get("version") != _VERSION:
        raise ValueError(f"unknown version {data.get('version')!r}")
    parser = data.get("parser")
    if parser is not None and not isinstance(parser, dict):
        raise ValueError("parser: not an object")
    return {fp: Checkpoint(**entry) for fp, entry in data["files"].items()}, parser
