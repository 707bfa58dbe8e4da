"""Ingest: SLIs from what registries emit (log files, notifications) as Observations.

Every source yields the same :class:`~registry_slo.observation.Observation` the probes
yield. A log source is a :class:`FileTailer` (follow files through rotation, with
atomic checkpoints) feeding a :class:`SourcePipeline` (one format's parser, bounded
repository labels, tag overwrite detection) that hands observations and line accounting
to a sink: the exporter's metrics (:class:`MetricsSink`, run by :class:`IngestService`)
or a :class:`Tally` (:func:`replay`). A :class:`NotificationReceiver` turns registry
webhooks (distribution envelopes, Harbor) into the same records, deduplicated by event id.
A ``distribution-gc`` source reads a garbage collector's output: its lines are no
operations, and what they report of its runs goes to the sink as
:class:`~registry_slo.ingest.formats.GcReport` s.
"""

from __future__ import annotations

from registry_slo.config import (
    FORMAT_NAMES,
    IngestConfig,
    JsonlMapping,
    LogFormat,
    LogSourceConfig,
    NotificationEndpoint,
    NotificationsConfig,
    RepositoryLabels,
)
from registry_slo.ingest.checkpoint import Checkpoint, CheckpointStore
from registry_slo.ingest.formats import (
    IGNORED_REASONS,
    REJECTED_REASONS,
    Ignored,
    Parser,
    Rejected,
    make_parser,
)
from registry_slo.ingest.labels import OTHER, RepositoryLabeler
from registry_slo.ingest.lines import LineSplitter
from registry_slo.ingest.notify import Deduplicator, NotificationReceiver
from registry_slo.ingest.overwrite import TagOverwriteDetector
from registry_slo.ingest.pipeline import SourcePipeline
from registry_slo.ingest.replay import ReplayResult, replay
from registry_slo.ingest.service import IngestService, MetricsSink
from registry_slo.ingest.sink import LineCounts, Sink, Tally
from registry_slo.ingest.tail import FileTailer
from registry_slo.vocabulary import OPERATIONS

__all__ = [
    "FORMAT_NAMES",
    "IGNORED_REASONS",
    "OPERATIONS",
    "OTHER",
    "REJECTED_REASONS",
    "Checkpoint",
    "CheckpointStore",
    "Deduplicator",
    "FileTailer",
    "Ignored",
    "IngestConfig",
    "IngestService",
    "JsonlMapping",
    "LineCounts",
    "LineSplitter",
    "LogFormat",
    "LogSourceConfig",
    "MetricsSink",
    "NotificationEndpoint",
    "NotificationReceiver",
    "NotificationsConfig",
    "Parser",
    "Rejected",
    "ReplayResult",
    "RepositoryLabeler",
    "RepositoryLabels",
    "Sink",
    "SourcePipeline",
    "TagOverwriteDetector",
    "Tally",
    "make_parser",
    "replay",
]
