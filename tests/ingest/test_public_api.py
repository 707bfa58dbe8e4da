"""Pin the public API of registry_slo.ingest: changing it must be a deliberate act."""

from __future__ import annotations

import registry_slo.ingest as ingest
import registry_slo.ingest.formats as formats


def test_ingest_public_api() -> None:
    assert sorted(ingest.__all__) == sorted([
        "FORMAT_NAMES", "IGNORED_REASONS", "OPERATIONS", "OTHER", "REJECTED_REASONS",
        "Checkpoint", "CheckpointStore", "Deduplicator", "FileTailer", "Ignored", "IngestConfig",
        "IngestService", "JsonlMapping", "LineCounts", "LineSplitter", "LogFormat",
        "LogSourceConfig", "MetricsSink", "NotificationEndpoint", "NotificationReceiver",
        "NotificationsConfig", "Parser", "Rejected", "ReplayResult",
        "RepositoryLabeler", "RepositoryLabels", "Sink", "SourcePipeline", "TagOverwriteDetector",
        "Tally", "make_parser", "replay",
    ])
    for name in ingest.__all__:
        assert hasattr(ingest, name)
    for name in formats.__all__:
        assert hasattr(formats, name)


def test_reason_sets_are_closed_and_distinct() -> None:
    assert set(ingest.IGNORED_REASONS).isdisjoint(ingest.REJECTED_REASONS)
    assert ingest.OPERATIONS == ("auth", "catalog", "tags_list", "pull_manifest",
                                 "push_manifest", "pull_blob", "check_blob", "push_blob",
                                 "delete", "other")
