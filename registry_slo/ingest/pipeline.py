"""One source's accounting: lines → parser → labels, overwrites → sink.

:class:`SourcePipeline` is the single place where a line becomes exactly one of an
observation, an ignored line or a rejected line; the tailer and ``replay`` both feed it
and call :meth:`SourcePipeline.flush` after each chunk, before they record a position.
A garbage collector's line is an ignored line whose report (a
:class:`~registry_slo.ingest.formats.GcReport`) goes to the sink as it is read; the
parser's state across lines (:class:`~registry_slo.ingest.formats.StatefulParser`) is
saved and restored through the pipeline with the read positions.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from typing import Any

import structlog

from registry_slo.ingest.formats import GcReport, Ignored, Parser, Rejected, StatefulParser
from registry_slo.ingest.labels import RepositoryLabeler
from registry_slo.ingest.overwrite import TagOverwriteDetector
from registry_slo.ingest.sink import LineCounts, Sink
from registry_slo.observation import Observation

__all__ = ["RejectLog", "SourcePipeline"]

log = structlog.get_logger("registry_slo.ingest")


class RejectLog:
    """Log rejected lines at a bounded rate: the first of each reason at once, then at
    most one summary per reason every ``interval`` seconds."""

    def __init__(self, source: str, interval: float = 60.0) -> None:
        self.source = source
        self.interval = interval
        self._last: dict[str, float] = {}
        self._suppressed: dict[str, int] = {}

    def __call__(self, reason: str, detail: str) -> None:
        """Note one rejected line."""
        now = time.monotonic()
        last = self._last.get(reason)
        if last is not None and now - last < self.interval:
            self._suppressed[reason] = self._suppressed.get(reason, 0) + 1
            return
        self._last[reason] = now
        log.warning(
            "ingest: line rejected",
            source=self.source,
            reason=reason,
            detail=detail[:200],
            suppressed_since_last=self._suppressed.pop(reason, 0),
        )


class SourcePipeline:
    """Account one source's lines.

    Args:
        source: the source's name.
        parser: its format's parser (``None`` for a source that hands over records).
        sink: where observations and counts go.
        labeler: bounds the ``repository`` label (``None``: no repository label).
        overwrites: tag overwrite detection (``None``: off).
    """

    def __init__(
        self,
        source: str,
        parser: Parser | None,
        sink: Sink,
        labeler: RepositoryLabeler | None = None,
        overwrites: TagOverwriteDetector | None = None,
    ) -> None:
        self.source = source
        self.parser = parser
        self.sink = sink
        self.labeler = labeler
        self.overwrites = overwrites
        self.pending = LineCounts()
        self.reject_log = RejectLog(source)
        self.stateful = parser if isinstance(parser, StatefulParser) else None

    def lines(self, lines: Iterable[bytes]) -> None:
        """Account complete lines (without their newlines)."""
        if self.parser is None:
            raise TypeError(f"source {self.source!r} takes records, not lines")
        counts = self.pending
        ignored = counts.ignored
        rejected = counts.rejected
        parse = self.parser.parse
        deliver = self._deliver
        n = observations = 0
        for line in lines:
            n += 1
            if not line.isascii():
                try:
                    line.decode()
                except UnicodeDecodeError:
                    rejected["non_utf8"] += 1
                    self.reject_log("non_utf8", repr(line[:80]))
                    continue
            if not line or line.isspace():
                ignored["blank"] += 1
                continue
            try:
                result = parse(line)
            except Rejected as exc:
                rejected[exc.reason] += 1
                self.reject_log(exc.reason, f"{exc.detail} in {line[:120]!r}")
                continue
            except Exception:  # a parser bug must not stop the source
                rejected["internal_error"] += 1
                log.exception("ingest: parser failed", source=self.source, line=line[:200])
                continue
            if type(result) is Ignored:
                ignored[result.reason] += 1
                continue
            if not isinstance(result, Observation):  # a garbage collector's line
                assert isinstance(result, GcReport)
                if self._report(result):
                    ignored[result.reason] += 1
                else:
                    rejected["internal_error"] += 1
                continue
            if deliver(result):
                observations += 1
            else:
                rejected["internal_error"] += 1
        counts.lines += n
        counts.observations += observations

    def records(self, results: Iterable[Observation | Ignored]) -> None:
        """Account records read elsewhere (notification events), one line each."""
        counts = self.pending
        for result in results:
            counts.lines += 1
            if type(result) is Ignored:
                counts.ignored[result.reason] += 1
                continue
            assert isinstance(result, Observation)
            if self._deliver(result):
                counts.observations += 1
            else:
                counts.rejected["internal_error"] += 1

    def _deliver(self, result: Observation) -> bool:
        """Hand one observation to the sink (and tag overwrite detection); ``False``
        when that raised: logged, and the record's neighbours still count."""
        try:
            label = (
                self.labeler.label(result.region, result.repository)
                if self.labeler is not None
                else None
            )
            if (
                self.overwrites is not None
                and result.tag is not None
                and result.digest is not None
                and self.overwrites.observe(result)
            ):
                self.sink.tag_overwrite(result, label)
            self.sink.observe(result, label)
        except Exception:  # a bug downstream must not take other records with it
            log.exception("ingest: accounting failed", source=self.source,
                          record=repr(result)[:300])
            return False
        return True

    def _report(self, report: GcReport) -> bool:
        """Hand a garbage collector's report to the sink; ``False`` when that raised
        (logged)."""
        try:
            self.sink.gc_report(report)
        except Exception:  # a bug downstream must not take other records with it
            log.exception("ingest: accounting failed", source=self.source,
                          record=repr(report)[:300])
            return False
        return True

    def snapshot(self) -> dict[str, Any] | None:
        """The parser's state across lines, to save with the read positions (``None``:
        a parser without any)."""
        return self.stateful.snapshot() if self.stateful is not None else None

    def restore(self, saved: Mapping[str, Any] | None) -> None:
        """Go on from the parser state a checkpoint saved (``None``: a first start). A
        state the parser cannot use is logged and the parser starts afresh."""
        if self.stateful is None:
            return
        try:
            report = self.stateful.restore(saved)
        except ValueError as exc:
            log.error("ingest: unusable parser state in the checkpoint, starting afresh",
                      source=self.source, error=str(exc))
            report = self.stateful.restore(None)
        self._report(report)

    def settle(self, now: float) -> bool:
        """Let the parser end a unit that is over once nothing was read for a while
        (``now = math.inf``: the input is over).

        Returns:
            Whether its state changed (and is to be saved).
        """
        if self.stateful is None:
            return False
        report = self.stateful.settle(now)
        if report is None:
            return False
        self._report(report)
        return True

    def rejected(self, reason: str, detail: str = "") -> None:
        """Account one record that could not be read."""
        self.pending.lines += 1
        self.pending.rejected[reason] += 1
        self.reject_log(reason, detail)

    def too_long(self, count: int) -> None:
        """Account lines dropped for being longer than ``max_line_bytes``."""
        if count:
            self.pending.lines += count
            self.pending.rejected["line_too_long"] += count
            self.reject_log("line_too_long", "")

    def consumed(self, nbytes: int) -> None:
        """Account bytes read."""
        self.pending.bytes += nbytes

    def flush(self) -> None:
        """Hand the pending line counts to the sink."""
        if self.pending:
            counts, self.pending = self.pending, LineCounts()
            self.sink.account(self.source, counts)
