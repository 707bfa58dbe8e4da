"""Storage use from the registry's filesystem (M7) and what pushed manifests are (M10)."""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import pytest

from registry_slo.config import ConfigError, FilesystemSourceConfig, load_config
from registry_slo.ingest import IngestConfig, IngestService, Tally
from registry_slo.ingest.artifacts import artifact_kind
from registry_slo.ingest.filesystem import FilesystemUsage
from registry_slo.observation import Observation
from registry_slo.telemetry.metrics import ExporterMetrics

DIGEST = "a" * 64


@pytest.mark.parametrize(("tag", "kind"), [
    ("v1.2.3", "image"),
    ("latest", "image"),
    (f"sha256-{DIGEST}.sig", "signature"),
    (f"sha256-{DIGEST}.att", "attestation"),
    (f"sha256-{DIGEST}.sbom", "sbom"),
    (f"sha256-{DIGEST[:10]}.sig", "image"),  # not a digest: an ordinary tag
    (f"sha256-{DIGEST}.sig.bak", "image"),
    (f"sha256-{DIGEST}", "referrers"),  # the OCI 1.1 tag schema's referrers index
    (None, "untagged"),
    ("", "untagged"),
])
def test_artifact_kind_follows_cosigns_tag_layout(tag: str | None, kind: str) -> None:
    assert artifact_kind(tag) == kind


def push(tag: str | None, success: bool = True) -> Observation:
    return Observation(region="east", operation="push_manifest", source="east-log",
                       success=success, reason=None, duration_seconds=0.01, time=0.0,
                       tag=tag)


def test_manifest_pushes_are_counted_by_artifact(tmp_path: Path) -> None:
    metrics = ExporterMetrics()
    config = IngestConfig(checkpoint_dir=tmp_path, logs=[{
        "name": "east-log", "region": "east", "format": "distribution",
        "paths": [str(tmp_path / "registry.log")]}])
    service = IngestService(config, metrics.ingest)
    sink = service.sources[0].tailer.pipeline.sink

    def value(artifact: str) -> float | None:
        return metrics.registry.get_sample_value(
            "registry_slo_registry_manifest_pushes_total",
            {"region": "east", "source": "east-log", "artifact": artifact})

    assert value("signature") == 0.0  # exists before the first push
    for tag in ("v1", "v2", f"sha256-{DIGEST}.sig", None):
        sink.observe(push(tag), None)
    sink.observe(push("v3", success=False), None)  # a failed push is not a manifest
    assert (value("image"), value("signature"), value("untagged")) == (2.0, 1.0, 1.0)
    tally = Tally()
    for tag in ("v1", f"sha256-{DIGEST}.sbom"):
        tally.observe(push(tag), None)
    assert tally.to_json()["manifest_pushes"] == {"east": {"image": 1, "sbom": 1}}


def test_filesystem_usage_is_what_statvfs_says(tmp_path: Path) -> None:
    usage = FilesystemUsage(FilesystemSourceConfig(name="fs", region="east", path=tmp_path))
    total, used, free = shutil.disk_usage(tmp_path)  # statvfs, as df reads it
    assert usage.used() == pytest.approx(used, rel=0.01)
    assert usage.capacity() == pytest.approx(used + free, rel=0.01)
    assert usage.capacity() <= total
    gone = FilesystemUsage(FilesystemSourceConfig(name="fs", region="east",
                                                  path=tmp_path / "missing"))
    assert math.isnan(gone.used()) and math.isnan(gone.capacity())


def test_filesystem_sources_feed_the_storage_gauges(tmp_path: Path) -> None:
    metrics = ExporterMetrics()
    IngestService(IngestConfig(filesystems=[
        {"name": "east-storage", "region": "east", "path": str(tmp_path)}]), metrics.ingest)
    labels = {"region": "east", "source": "east-storage"}
    used = metrics.registry.get_sample_value("registry_slo_registry_storage_used_bytes",
                                             labels)
    capacity = metrics.registry.get_sample_value(
        "registry_slo_registry_storage_capacity_bytes", labels)
    assert used is not None and capacity is not None and 0 < used < capacity


def test_a_relative_filesystem_path_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("ingest:\n  filesystems:\n"
                    "    - {name: fs, region: east, path: var/lib/registry}\n")
    with pytest.raises(ConfigError,
                       match=r"ingest\.filesystems\[0\]\.path: 'var/lib/registry' must be "
                             "an absolute path"):
        load_config(path)
