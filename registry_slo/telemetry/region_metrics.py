"""Region health: replication lag, registry clocks, TLS certificates, pull-through caches,
rate-limit headroom, signature and SBOM coverage, rollback readiness.

What the multi-region probes learn about a region beyond each run's result (M6, M13):
most of it is computed at scrape from what the probes last saw (the lag keeps growing
while replication is stopped), the rest is the registries' own counters as last read.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from prometheus_client import Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from registry_slo.oci import RateLimits
from registry_slo.probes import CoverageResults, RollbackResults
from registry_slo.telemetry._last_read import RegistryCacheCounters
from registry_slo.telemetry._series import SeriesGroup
from registry_slo.vocabulary import (
    CERTIFICATE_EXPIRY,
    LAG_BUCKETS,
    RATE_LIMIT_LIMIT,
    RATE_LIMIT_MALFORMED,
    RATE_LIMIT_REMAINING,
    RATE_LIMIT_RESET,
    RATE_LIMIT_WINDOW,
    REPLICATION_LAG,
)

__all__ = ["RegionMetrics"]


class _ReplicationLag(Collector):
    """``registry_slo_replication_lag_seconds``, read at scrape; a pair whose lag has
    not been read yet has no sample."""

    def __init__(self) -> None:
        self.readings: dict[tuple[str, str], Callable[[], float | None]] = {}

    def collect(self) -> Iterable[Metric]:
        family = GaugeMetricFamily(
            REPLICATION_LAG.name,
            "Seconds since the newest heartbeat visible on the mirror was written at the "
            "source region; computed at scrape, so it keeps growing while replication is "
            "stopped. NaN when the mirror was read and has shown no heartbeat yet; no "
            "sample before the first read.",
            labels=["region", "source_region"],
        )
        for (region, source_region), reading in sorted(self.readings.items()):
            value = reading()
            if value is not None:
                family.add_metric([region, source_region], value)
        yield family


class _RateLimits(Collector):
    """The rate-limit series, read at scrape from each region's client: a figure the
    registry has not stated has no sample (never 0)."""

    def __init__(self) -> None:
        self.regions: dict[str, RateLimits] = {}

    def collect(self) -> Iterable[Metric]:
        labels = ["region", "policy"]
        remaining = GaugeMetricFamily(
            RATE_LIMIT_REMAINING.name,
            "Requests left in the current rate-limit window, as the registry's last answer "
            "stated it (RateLimit-Remaining, RateLimit r=, 0 after a 429); restored to the "
            "limit once the stated reset has passed.", labels=labels)
        limit = GaugeMetricFamily(
            RATE_LIMIT_LIMIT.name,
            "Requests allowed per rate-limit window (RateLimit-Limit, RateLimit-Policy q=).",
            labels=labels)
        window = GaugeMetricFamily(
            RATE_LIMIT_WINDOW.name,
            "Length of the rate-limit window in seconds (w=).", labels=labels)
        reset = GaugeMetricFamily(
            RATE_LIMIT_RESET.name,
            "Seconds until the quota is restored (RateLimit-Reset, t=, Retry-After on a "
            "429), counting down from the answer that stated it.", labels=labels)
        malformed = CounterMetricFamily(
            RATE_LIMIT_MALFORMED.name,
            "Rate-limit headers that could not be read (ignored; the probe is unaffected).",
            labels=["region", "header"])
        for region, limits in sorted(self.regions.items()):
            for quota in limits.current():
                for family, value in ((remaining, quota.remaining), (limit, quota.limit),
                                      (window, quota.window), (reset, quota.reset)):
                    if value is not None:
                        family.add_metric([region, quota.policy], value)
            for header, count in sorted(limits.malformed_counts().items()):
                malformed.add_metric([region, header], count)
        yield from (remaining, limit, window, reset, malformed)


class _Coverage(Collector):
    """The coverage check's figures (M10), per region and repository, from its last
    completed run: no sample before the first."""

    def __init__(self) -> None:
        self.regions: dict[str, CoverageResults] = {}

    def collect(self) -> Iterable[Metric]:
        labels = ["region", "repository"]
        families = {
            "images": GaugeMetricFamily(
                "registry_slo_coverage_images",
                "Recent images the coverage check looked at (the last coverage.tags tags "
                "of the repository).", labels=labels),
            "signed": GaugeMetricFamily(
                "registry_slo_coverage_signed_images",
                "Of those, images with a signature attached (cosign, notation, Sigstore "
                "bundle), by the referrers API or the tag schema.", labels=labels),
            "attested": GaugeMetricFamily(
                "registry_slo_coverage_attested_images",
                "Of those, images with an attestation attached (in-toto, DSSE).",
                labels=labels),
            "sbom": GaugeMetricFamily(
                "registry_slo_coverage_sbom_images",
                "Of those, images with an SBOM attached (SPDX, CycloneDX, Syft).",
                labels=labels),
        }
        api = GaugeMetricFamily(
            "registry_slo_coverage_referrers_api",
            "1 when the registry answered the OCI 1.1 referrers API for every image of the "
            "repository, 0 when the tag schema (sha256-<hex> index tags) was read instead.",
            labels=labels)
        for region, results in sorted(self.regions.items()):
            for repository, found in sorted(results.repositories.items()):
                for key, value in (("images", found.images), ("signed", found.signed),
                                   ("attested", found.attested), ("sbom", found.sbom)):
                    families[key].add_metric([region, repository], value)
                api.add_metric([region, repository], 1.0 if found.referrers_api else 0.0)
        yield from (*families.values(), api)


class _Rollback(Collector):
    """The rollback check's figures (M16), from its last completed run."""

    def __init__(self) -> None:
        self.regions: dict[str, RollbackResults] = {}

    def collect(self) -> Iterable[Metric]:
        checked = GaugeMetricFamily(
            "registry_slo_rollback_targets",
            "Rollback targets checked: the newest digests pulled by digest or pushed under a "
            "protected tag (rollback.keep per repository, within rollback.window), and each "
            "protected tag's previous digest.", labels=["region", "repository"])
        missing = GaugeMetricFamily(
            "registry_slo_rollback_targets_missing",
            "Of those, digests the registry no longer has (HEAD of the manifest: 404): a "
            "rollback to them would fail.", labels=["region", "repository"])
        previous = GaugeMetricFamily(
            "registry_slo_rollback_previous_missing",
            "1 when the digest a protected tag pointed at before its last push is gone "
            "(the previous production release cannot be rolled back to), else 0.",
            labels=["region", "repository", "tag"])
        for region, results in sorted(self.regions.items()):
            for repository, found in sorted(results.repositories.items()):
                checked.add_metric([region, repository], found.checked)
                missing.add_metric([region, repository], found.missing)
            for tag in results.tags:
                previous.add_metric([region, tag.repository, tag.tag],
                                    0.0 if tag.present else 1.0)
        yield from (checked, missing, previous)


class RegionMetrics(SeriesGroup):
    """The region health series (their values are read at scrape from ``track_*``)."""

    def __init__(self) -> None:
        super().__init__()
        self.replication_lag = self.add(_ReplicationLag())
        self.replication_lag_first_sight = self.add(Histogram(
            "registry_slo_replication_lag_at_first_sight_seconds",
            "Age of each new heartbeat when first seen on the mirror (includes up to one "
            "heartbeat interval of polling delay).",
            ["region", "source_region"],
            buckets=LAG_BUCKETS,
            registry=None,
        ))
        self.clock_offset = self.add(Gauge(
            "registry_slo_registry_clock_offset_seconds",
            "Estimated offset of the registry's clock from the exporter's "
            "(registry - exporter), from HTTP Date headers; lag figures are only as good "
            "as the clocks.",
            ["region"],
            registry=None,
        ))
        self.cache_counters = self.add(RegistryCacheCounters())
        self.rate_limits = self.add(_RateLimits())
        self.coverage = self.add(_Coverage())
        self.rollback = self.add(_Rollback())
        self.certificate_expiry = self.add(Gauge(
            CERTIFICATE_EXPIRY.name,
            "Unix time at which the registry's TLS certificate expires, as presented to the "
            "probes (https regions with verification; NaN until a probe has connected).",
            ["region"],
            registry=None,
        ))

    def track_replication(
        self, region: str, source_region: str, lag: Callable[[], float | None]
    ) -> None:
        """Serve ``lag()`` as the replication lag of ``region`` behind ``source_region``.

        Args:
            region: the mirror.
            source_region: the region it replicates from.
            lag: seconds, read at every scrape (NaN while unknown, ``None``: not read
                yet, no sample).
        """
        self.replication_lag.readings[region, source_region] = lag

    def first_sight(self, region: str, source_region: str, lag: float) -> None:
        """Observe the age of a heartbeat ``region`` showed for the first time.

        Args:
            region: the mirror.
            source_region: the region the heartbeat was written at.
            lag: its age in seconds when first seen.
        """
        self.replication_lag_first_sight.labels(region, source_region).observe(lag)

    def track_clock(self, region: str, offset: Callable[[], float]) -> None:
        """Serve ``offset()`` as the clock offset of ``region``'s registry.

        Args:
            region: the region.
            offset: seconds (registry - exporter), read at every scrape.
        """
        self.clock_offset.labels(region).set_function(offset)

    def track_rate_limits(self, region: str, limits: RateLimits) -> None:
        """Serve what ``region``'s registry says of its rate limits (read at scrape).

        Args:
            region: the region.
            limits: its client's :attr:`~registry_slo.oci.RegistryClient.rate_limits`.
        """
        self.rate_limits.regions[region] = limits

    def track_coverage(self, region: str, results: CoverageResults) -> None:
        """Serve ``region``'s coverage check results (read at scrape)."""
        self.coverage.regions[region] = results

    def track_rollback(self, region: str, results: RollbackResults) -> None:
        """Serve ``region``'s rollback check results (read at scrape)."""
        self.rollback.regions[region] = results

    def track_certificate(self, region: str, expiry: Callable[[], float]) -> None:
        """Serve ``expiry()`` as the TLS certificate expiry of ``region``'s registry.

        Args:
            region: the region.
            expiry: Unix time, read at every scrape (NaN while unknown).
        """
        self.certificate_expiry.labels(region).set_function(expiry)
