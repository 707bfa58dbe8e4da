"""Read positions that survive restarts, written atomically.

One JSON file per source (``<checkpoint_dir>/<source>.json``) maps each file
*fingerprint* to the byte offset just after the last line whose accounting was handed
to the sink. It is replaced atomically: written to a temporary file in the same
directory, flushed and ``fsync``-ed, renamed over the old one, and the directory
``fsync``-ed, so after a crash the file is either the previous checkpoint or the new
one, never a mix.

Guarantee (see ``docs/ingest.md``): a position is recorded only after the lines before
it were accounted, so no line is ever skipped. After a clean stop the last checkpoint
covers every line read, and a restart neither loses nor repeats a line. After a crash,
the lines read since the last checkpoint (at most ``checkpoint_interval`` worth) are
read again and counted again by the new process, whose counters start from zero: at
least once, never lost.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import structlog

__all__ = ["Checkpoint", "CheckpointStore"]

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


class CheckpointStore:
    """One source's checkpoint file.

    Args:
        path: the JSON file.
        retention: seconds a file no longer seen is remembered.
    """

    def __init__(self, path: Path, retention: float = 7 * 86400) -> None:
        self.path = path
        self.retention = retention

    def load(self) -> dict[str, Checkpoint]:
        """The saved checkpoints by fingerprint (empty when there is no usable file).

        A damaged file is logged and set aside (renamed ``*.corrupt``), so the source
        starts as on a first start rather than not at all.
        """
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return {}
        try:
            data = json.loads(text)
            if data.get("version") != _VERSION:
                raise ValueError(f"unknown version {data.get('version')!r}")
            return {fp: Checkpoint(**entry) for fp, entry in data["files"].items()}
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            aside = self.path.with_suffix(".corrupt")
            with contextlib.suppress(OSError):
                os.replace(self.path, aside)
            log.error("ingest: unusable checkpoint set aside", path=str(self.path),
                      moved_to=str(aside), error=str(exc))
            return {}

    def save(self, entries: dict[str, Checkpoint]) -> None:
        """Replace the checkpoint file atomically (temp file, fsync, rename, fsync dir).

        Entries not updated within ``retention`` are dropped.
        """
        now = time.time()
        kept = {fp: asdict(cp) for fp, cp in entries.items() if now - cp.updated <= self.retention}
        payload = json.dumps({"version": _VERSION, "files": kept}, sort_keys=True, indent=1)
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
