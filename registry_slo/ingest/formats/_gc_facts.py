"""What a garbage collector's output reports: runs, not registry operations.

A ``distribution-gc`` line is never an :class:`~registry_slo.observation.Observation`
(garbage collection is not traffic, and must not count in traffic SLIs): in the line
accounting it is an ignored line (``not_an_operation``) like any other, and what it says
of the run travels beside it in a :class:`GcReport` — an :class:`Ignored` verdict that
carries facts. The pipeline hands the report to its sink (``Sink.gc_report``), the
exporter's sink to the ingest metrics, the way tag overwrites and manifest pushes reach
them.

==================  ===========================================================
fact                what it is
==================  ===========================================================
:class:`GcSummary`  a run's summary line: blobs marked, blobs and manifests eligible
:class:`GcDeleted`  one blob or manifest deleted (one deletion line)
:class:`GcRunEnded` a run completed (``ok``, ``dry_run``) or failed
:class:`GcLastSuccess`  the time of the last successful run (or, before any, the
                    time the source started watching)
==================  ===========================================================
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from registry_slo.ingest.formats._verdict import Ignored

__all__ = [
    "GC_KINDS",
    "GC_RESULTS",
    "GcDeleted",
    "GcFact",
    "GcKind",
    "GcLastSuccess",
    "GcReport",
    "GcResult",
    "GcRunEnded",
    "GcSummary",
]

GcResult = Literal["ok", "dry_run", "failed"]
GC_RESULTS: tuple[GcResult, ...] = ("ok", "dry_run", "failed")
"""The closed set of ``result`` values of ``registry_slo_gc_runs_total``."""

GcKind = Literal["blob", "manifest"]
GC_KINDS: tuple[GcKind, ...] = ("blob", "manifest")
"""What a garbage collector deletes."""


@dataclass(frozen=True, slots=True)
class GcSummary:
    """A run's summary line (``N blobs marked, M blobs and K manifests eligible for
    deletion``): the run's totals, read from that line alone.

    Attributes:
        blobs_marked: blobs (manifests included) some tagged manifest references.
        blobs_eligible: blobs nothing references (deleted unless a dry run).
        manifests_eligible: untagged manifests (``--delete-untagged`` only).
    """

    blobs_marked: int
    blobs_eligible: int
    manifests_eligible: int


@dataclass(frozen=True, slots=True)
class GcDeleted:
    """One deletion line: a blob (``Deleting blob: …``) or a manifest (``deleting
    manifest: …``) removed from storage.

    Attributes:
        kind: ``blob`` or ``manifest``.
    """

    kind: GcKind


@dataclass(frozen=True, slots=True)
class GcRunEnded:
    """A run is over.

    Attributes:
        result: ``ok`` (it deleted what was eligible, or found nothing to delete),
            ``dry_run`` (it listed eligible blobs and deleted none), ``failed``.
        time: Unix time it completed: its last line's logrus timestamp when it has one,
            else the time that line was read.
        deletions: logrus times of its first and last deletion lines (what a storage
            reading before and after must bracket); ``None`` when it deleted nothing,
            or when one of its deletion lines had no timestamp or was not read.
        deleted: blobs and manifests it deleted (its deletion lines).
    """

    result: GcResult
    time: float
    deletions: tuple[float, float] | None
    deleted: int


@dataclass(frozen=True, slots=True)
class GcLastSuccess:
    """When the last successful (not dry) run of the source completed; before the
    source has read any, when it started watching (kept across restarts in its
    checkpoint), so that an overdue alert can fire for a collector that never runs.

    Attributes:
        time: Unix time.
    """

    time: float


GcFact = GcSummary | GcDeleted | GcRunEnded | GcLastSuccess
"""What a garbage collector's line (or the end of its run) reports."""


@dataclass(frozen=True, slots=True)
class GcReport(Ignored):
    """A garbage collector's line, or the end of a run: ignored in the line accounting
    (``reason`` ``not_an_operation``: it is no registry operation), with what it
    reports.

    Attributes:
        region: the source's region.
        source: the source's name.
        facts: what it reports, in order.
    """

    region: str
    source: str
    facts: tuple[GcFact, ...]
