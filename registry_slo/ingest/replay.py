"""``registry-slo replay``: read log files once and add up what they say.

For debugging a format (what would the exporter make of this log?) and for the ingest
benchmark. The same parser, line splitting, accounting, repository labels and tag
overwrite detection as the running exporter, with a :class:`~registry_slo.ingest.Tally`
instead of Prometheus metrics, and no checkpoints.
"""

from __future__ import annotations

import math
import time
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from registry_slo.config import JsonlMapping, LogFormat, RepositoryLabels
from registry_slo.ingest.formats import make_parser
from registry_slo.ingest.labels import RepositoryLabeler
from registry_slo.ingest.lines import LineSplitter
from registry_slo.ingest.overwrite import TagOverwriteDetector
from registry_slo.ingest.pipeline import SourcePipeline
from registry_slo.ingest.sink import Tally

__all__ = ["ReplayResult", "replay"]

CHUNK_BYTES = 1 << 20


@dataclass
class ReplayResult:
    """What :func:`replay` read.

    Attributes:
        tally: the derived counts.
        files: the files read, in order.
        seconds: wall time spent reading and accounting.
    """

    tally: Tally
    files: list[str]
    seconds: float

    def to_json(self) -> dict[str, Any]:
        """The ``replay --json`` document."""
        data = self.tally.to_json()
        lines = data["lines"]
        return {
            "files": self.files,
            **data,
            "seconds": round(self.seconds, 6),
            "lines_per_second": round(lines / self.seconds, 1) if self.seconds > 0 else None,
        }


def replay(
    files: Sequence[str | Path],
    format: LogFormat,
    *,
    region: str = "replay",
    source: str = "replay",
    mapping: JsonlMapping | None = None,
    registries: Collection[str] | None = None,
    repositories: RepositoryLabels | None = None,
    max_line_bytes: int = 64 << 10,
    tag_memory: int = 100_000,
) -> ReplayResult:
    """Read ``files`` from beginning to end, in order, as one source.

    Args:
        files: log files (``-`` is not supported: pass a path).
        format: the log format.
        region: the ``region`` of the observations.
        source: the source name.
        mapping: the field mapping (``jsonl``).
        registries: the registry hosts whose pulls count (``kubernetes-events``;
            ``None``: every registry).
        repositories: repository label bounds (default: the configuration default).
        max_line_bytes: longer lines are rejected.
        tag_memory: tags remembered for overwrite detection.

    Returns:
        The counts.

    Raises:
        OSError: a file cannot be read.
        ValueError: an unknown format, or ``jsonl`` without a mapping.
    """
    tally = Tally()
    pipeline = SourcePipeline(
        source,
        make_parser(format, region, source, mapping, registries),
        tally,
        RepositoryLabeler(repositories or RepositoryLabels()),
        TagOverwriteDetector(tag_memory),
    )
    started = time.perf_counter()
    for name in files:
        splitter = LineSplitter(max_line_bytes)
        with open(name, "rb", buffering=0) as fh:
            while chunk := fh.read(CHUNK_BYTES):
                cut = splitter.feed(chunk)
                pipeline.lines(cut.lines)
                pipeline.too_long(cut.too_long)
                pipeline.consumed(len(chunk))
                pipeline.flush()
        cut = splitter.finish()
        pipeline.lines(cut.lines)
        pipeline.too_long(cut.too_long)
        pipeline.flush()
    pipeline.settle(math.inf)  # the input is over: so is a run whose outcome is known
    return ReplayResult(tally, [str(f) for f in files], time.perf_counter() - started)
