"""Where a source's accounting goes: the exporter's metrics, or a :class:`Tally`.

The pipeline hands every observation over as it is read, and the line counts (lines,
ignored and rejected by reason) in batches, once per chunk read; a tailer writes its
checkpoint only after the batch that covers it has been handed over. A garbage
collector's lines are no observations: what they report of its runs is handed over as
:class:`~registry_slo.ingest.formats.GcReport` s, as they are read.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol, assert_never

from registry_slo.ingest.artifacts import pushed_artifact
from registry_slo.ingest.formats import (
    GcDeleted,
    GcLastSuccess,
    GcReport,
    GcRunEnded,
    GcSummary,
)
from registry_slo.observation import Observation

__all__ = ["LineCounts", "Sink", "Tally"]


@dataclass
class LineCounts:
    """One batch of line accounting for one source.

    Attributes:
        lines: lines read (each is exactly one observation, ignored or rejected line).
        observations: lines that were an operation.
        ignored: ignored lines by reason.
        rejected: rejected lines by reason.
        bytes: bytes consumed.
    """

    lines: int = 0
    observations: int = 0
    ignored: Counter[str] = field(default_factory=Counter)
    rejected: Counter[str] = field(default_factory=Counter)
    bytes: int = 0

    def __bool__(self) -> bool:
        return bool(self.lines or self.bytes)

    def add(self, other: LineCounts) -> None:
        """Add another batch into this one."""
        self.lines += other.lines
        self.observations += other.observations
        self.ignored.update(other.ignored)
        self.rejected.update(other.rejected)
        self.bytes += other.bytes


class Sink(Protocol):
    """Receives a source's observations and line accounting."""

    def observe(self, observation: Observation, repository: str | None) -> None:
        """One operation; ``repository`` is its bounded label (``None``: none)."""
        ...

    def tag_overwrite(self, observation: Observation, repository: str | None) -> None:
        """A push that moved an existing tag to another digest."""
        ...

    def account(self, source: str, counts: LineCounts) -> None:
        """A batch of line counts."""
        ...

    def gc_report(self, report: GcReport) -> None:
        """What a garbage collector's line (or the end of its run) reports."""
        ...


def _key(*parts: object) -> str:
    return " ".join("-" if p is None else str(p) for p in parts)


class Tally:
    """A :class:`Sink` that adds everything up in memory (``replay`` prints it).

    Each observation costs one counter update (keyed by everything the views need); the
    views (:attr:`requests`, :attr:`failures`, ...) are added up when asked for.
    """

    def __init__(self) -> None:
        self.counts: dict[str, LineCounts] = {}
        # (region, operation, code, method, reason, repository label) -> observations
        self.cells: Counter[tuple[str, str, str, str, str, str | None]] = Counter()
        self.duration_sum = 0.0
        self.timed = 0
        self.egress_bytes = 0
        self.ingress_bytes = 0
        self.overwrites: Counter[tuple[str, str]] = Counter()
        # (region, artifact) -> manifests pushed
        self.manifest_pushes: Counter[tuple[str, str]] = Counter()
        self.first_time = math.inf
        self.last_time = -math.inf
        self._codes: dict[int | None, str] = {None: ""}
        # Garbage collection: (region, result) -> runs; (region, kind) -> deleted.
        self.gc_runs: Counter[tuple[str, str]] = Counter()
        self.gc_deleted: Counter[tuple[str, str]] = Counter()
        self.gc_summary: dict[str, GcSummary] = {}
        self.gc_last_success: dict[str, float] = {}

    def observe(self, observation: Observation, repository: str | None) -> None:
        """See :meth:`Sink.observe`."""
        o = observation
        code = self._codes.get(o.status)
        if code is None:
            code = self._codes[o.status] = str(o.status)
        reason = "" if o.success else str(o.reason or "protocol")
        self.cells[o.region, o.operation, code, o.method or "", reason, repository] += 1
        artifact = pushed_artifact(o)
        if artifact is not None:
            self.manifest_pushes[o.region, artifact] += 1
        if o.timed:
            self.duration_sum += o.duration_seconds
            self.timed += 1
        self.egress_bytes += o.bytes_received
        self.ingress_bytes += o.bytes_sent
        when = o.time
        if when < self.first_time:
            self.first_time = when
        if when > self.last_time:
            self.last_time = when

    @property
    def requests(self) -> Counter[tuple[str, str, str]]:
        """Observations by region, operation and status code."""
        out: Counter[tuple[str, str, str]] = Counter()
        for (region, operation, code, _, _, _), n in self.cells.items():
            out[region, operation, code] += n
        return out

    @property
    def failures(self) -> Counter[tuple[str, str, str]]:
        """Failed observations by region, operation and reason."""
        out: Counter[tuple[str, str, str]] = Counter()
        for (region, operation, _, _, reason, _), n in self.cells.items():
            if reason:
                out[region, operation, reason] += n
        return out

    @property
    def method_status(self) -> Counter[tuple[str, str]]:
        """Observations by HTTP method and status code."""
        out: Counter[tuple[str, str]] = Counter()
        for (_, _, code, method, _, _), n in self.cells.items():
            out[method, code] += n
        return out

    @property
    def repositories(self) -> Counter[tuple[str, str]]:
        """Observations by region and repository label."""
        out: Counter[tuple[str, str]] = Counter()
        for (region, _, _, _, _, repository), n in self.cells.items():
            if repository is not None:
                out[region, repository] += n
        return out

    def tag_overwrite(self, observation: Observation, repository: str | None) -> None:
        """See :meth:`Sink.tag_overwrite`."""
        self.overwrites[observation.region, repository or "-"] += 1

    def account(self, source: str, counts: LineCounts) -> None:
        """See :meth:`Sink.account`."""
        total = self.counts.get(source)
        if total is None:
            total = self.counts[source] = LineCounts()
        total.add(counts)

    def gc_report(self, report: GcReport) -> None:
        """See :meth:`Sink.gc_report`."""
        region = report.region
        for fact in report.facts:
            match fact:
                case GcSummary():
                    self.gc_summary[region] = fact
                case GcDeleted():
                    self.gc_deleted[region, fact.kind] += 1
                case GcRunEnded():
                    self.gc_runs[region, fact.result] += 1
                case GcLastSuccess():
                    self.gc_last_success[region] = fact.time
                case _:
                    assert_never(fact)

    def total(self) -> LineCounts:
        """All sources' line counts added up."""
        out = LineCounts()
        for counts in self.counts.values():
            out.add(counts)
        return out

    def to_json(self) -> dict[str, Any]:
        """The derived counts as a JSON-ready dict (``replay --json``)."""
        total = self.total()

        def nested(items: Iterable[tuple[tuple[str, ...], int]]) -> dict[str, Any]:
            out: dict[str, Any] = {}
            for key, value in sorted(items):
                node = out
                for part in key[:-1]:
                    node = node.setdefault(part or "-", {})
                node[key[-1] or "-"] = value
            return out

        out: dict[str, Any] = {
            "lines": total.lines,
            "bytes": total.bytes,
            "observations": total.observations,
            "ignored": dict(sorted(total.ignored.items())),
            "rejected": dict(sorted(total.rejected.items())),
            "requests": nested(self.requests.items()),
            "failures": nested(self.failures.items()),
            "requests_by_method_status": {
                _key(m or "-", s or "-"): n for (m, s), n in sorted(self.method_status.items())
            },
            "duration_seconds_sum": self.duration_sum,
            "timed_observations": self.timed,
            "bytes_by_direction": {"egress": self.egress_bytes, "ingress": self.ingress_bytes},
            "repositories": nested(self.repositories.items()),
            "tag_overwrites": nested(self.overwrites.items()),
            "manifest_pushes": nested(self.manifest_pushes.items()),
            "time_range": (
                [self.first_time, self.last_time] if self.first_time <= self.last_time
                else [None, None]
            ),
        }
        regions = {*self.gc_summary, *(r for r, _ in self.gc_runs),
                   *(r for r, _ in self.gc_deleted)}
        if regions:
            out["garbage_collection"] = {
                region: {
                    "runs": {result: n for (r, result), n in sorted(self.gc_runs.items())
                             if r == region},
                    "deleted": {kind: n for (r, kind), n in sorted(self.gc_deleted.items())
                                if r == region},
                    "last_summary": (
                        None if region not in self.gc_summary else {
                            "blobs_marked": self.gc_summary[region].blobs_marked,
                            "blobs_eligible": self.gc_summary[region].blobs_eligible,
                            "manifests_eligible":
                                self.gc_summary[region].manifests_eligible,
                        }),
                    "last_success": self.gc_last_success.get(region),
                }
                for region in sorted(regions)
            }
        return out
