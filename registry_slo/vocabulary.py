"""The project's vocabulary: every closed set of names, defined once and imported by all.

Failure reasons, registry operations, probe and SLI kinds, the exporter's series names
that rules and dashboards read, and the histogram bucket layouts. This module imports
nothing of the package (an import-linter contract keeps it so): a log parser, the
generator and the exporter all read their names from here, so they cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Literal, get_args

__all__ = [
    "ALERT_WINDOWS",
    "CERTIFICATE_EXPIRY",
    "COMPONENTS",
    "DAY",
    "DURATION_BUCKETS",
    "GC_BLOBS_DELETED",
    "GC_LAST_SUCCESS",
    "GC_RECLAIMED",
    "GC_RUNS",
    "HOUR",
    "INGEST_LINES",
    "LAG_BUCKETS",
    "MINUTE",
    "NEAR_THRESHOLD",
    "OPERATIONS",
    "PROBES_CONFIGURED",
    "PROBE_DURATION",
    "PROBE_FAILURES",
    "PROBE_KINDS",
    "PROBE_LAST_RUN",
    "PROBE_REQUESTS",
    "PROBE_SKIPPED",
    "RATE_LIMIT_LIMIT",
    "RATE_LIMIT_MALFORMED",
    "RATE_LIMIT_REMAINING",
    "RATE_LIMIT_RESET",
    "RATE_LIMIT_WINDOW",
    "REGISTRY_DURATION",
    "REGISTRY_FAILURES",
    "REGISTRY_REQUESTS",
    "REPLICATION_LAG",
    "SLI_KINDS",
    "STATUS_CODES",
    "STORAGE_CAPACITY",
    "STORAGE_USED",
    "TAG_OVERWRITES",
    "Component",
    "Operation",
    "ProbeKind",
    "ProbeLabel",
    "Reason",
    "SLIKind",
    "Series",
    "code_label",
    "duration_buckets",
]


class Reason(StrEnum):
    """The closed set of failure reasons, used as the ``reason`` label."""

    TIMEOUT = "timeout"
    CONNECT = "connect"
    TLS = "tls"
    AUTH = "auth"
    DENIED = "denied"
    NOT_FOUND = "not_found"
    RATE_LIMITED = "rate_limited"
    SERVER_ERROR = "server_error"
    DIGEST_MISMATCH = "digest_mismatch"
    PROTOCOL = "protocol"


Operation = Literal[
    "auth", "catalog", "tags_list", "pull_manifest", "push_manifest", "pull_blob",
    "check_blob", "push_blob", "delete", "other",
]
"""Values of the ``operation`` label for registry traffic.

``auth`` is the ``/v2/`` version check (where clients authenticate); ``check_blob`` is a
``HEAD`` on a blob (push clients asking whether a layer exists, where 404 is a normal
answer); ``push_blob`` covers every request of an upload session (POST, PATCH, PUT,
GET status, DELETE cancel); ``delete`` covers manifests and blobs; ``other`` is any
other ``/v2/`` endpoint.
"""
OPERATIONS: tuple[Operation, ...] = get_args(Operation)

ProbeKind = Literal["push", "pull", "auth", "cache"]
"""The probes a region can be configured to run (``probe.enabled``), and that an SLI
can be built on."""
PROBE_KINDS: tuple[ProbeKind, ...] = get_args(ProbeKind)

ProbeLabel = Literal[
    "push", "pull", "auth", "cache", "heartbeat", "replication", "coverage", "rollback"]
"""Values of the ``probe`` label: the configurable probes plus the multi-region ones."""

SLIKind = Literal[
    "probe_success", "probe_latency", "replication_lag", "auth_success",
    "traffic_success", "traffic_latency",
]
"""The kinds of service level indicator (``slos[].sli.kind``)."""
SLI_KINDS: tuple[SLIKind, ...] = get_args(SLIKind)

Component = Literal[
    "probe_scheduler", "ingest", "sli_engine", "http_server", "sink", "slo_store",
]
"""Values of the ``component`` label of ``registry_slo_internal_errors_total``.

The parts of a running exporter (``probe_scheduler``, ``ingest``, ``sli_engine``,
``http_server``: one that dies is counted once and stops the exporter; ``ingest`` also
counts each failed poll, which does not), an observation sink of the probe scheduler
that raised (``sink``), and each failed write of the SLO store (``slo_store``).
"""
COMPONENTS: tuple[Component, ...] = get_args(Component)


STATUS_CODES: tuple[str, ...] = (
    "200", "201", "202", "204", "206", "304", "307",
    "400", "401", "403", "404", "405", "413", "416", "429",
    "500", "502", "503", "504",
    "2xx", "3xx", "4xx", "5xx", "",
)
"""Values of the ``code`` label of registry traffic: a closed set, so that every series
a rule sums over can exist at zero before its first request (``rate()`` cannot see the
first increment of a series born at 1) and a registry answering odd statuses cannot
grow the series without bound. The statuses the OCI distribution API answers with keep
their own value; any other HTTP status is counted under its class (``418`` → ``4xx``);
``""`` is a request whose status the source does not say, or is not an HTTP status."""


def code_label(status: int | str | None) -> str:
    """The ``code`` label of a request answered with `status` (see `STATUS_CODES`)."""
    text = "" if status is None else str(status).strip()
    if text in STATUS_CODES:
        return text
    if len(text) == 3 and text.isascii() and text.isdigit() and "1" < text[0] < "6":
        return f"{text[0]}xx"
    return ""


# -- series ------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Series:
    """A metric family the exporter serves, by the name it is defined with.

    Counters are defined without ``_total`` (prometheus-client and OpenMetrics add it to
    the sample); rules read the sample names (:attr:`total`, :attr:`bucket`, …).
    """

    name: str

    @property
    def total(self) -> str:
        """A counter's sample name."""
        return f"{self.name}_total"

    @property
    def bucket(self) -> str:
        """A histogram's bucket series."""
        return f"{self.name}_bucket"

    @property
    def count(self) -> str:
        """A histogram's count series."""
        return f"{self.name}_count"

    def __str__(self) -> str:
        return self.name


# The series that generated rules, tests and dashboards read.
PROBE_REQUESTS = Series("registry_slo_probe_requests")
PROBE_FAILURES = Series("registry_slo_probe_failures")
PROBE_SKIPPED = Series("registry_slo_probe_skipped")
PROBE_DURATION = Series("registry_slo_probe_duration_seconds")
PROBE_LAST_RUN = Series("registry_slo_probe_last_run_timestamp_seconds")
PROBES_CONFIGURED = Series("registry_slo_probes_configured")
REPLICATION_LAG = Series("registry_slo_replication_lag_seconds")
CERTIFICATE_EXPIRY = Series("registry_slo_tls_certificate_expiry_timestamp_seconds")
RATE_LIMIT_REMAINING = Series("registry_slo_rate_limit_remaining")
RATE_LIMIT_LIMIT = Series("registry_slo_rate_limit_limit")
RATE_LIMIT_WINDOW = Series("registry_slo_rate_limit_window_seconds")
RATE_LIMIT_RESET = Series("registry_slo_rate_limit_reset_seconds")
RATE_LIMIT_MALFORMED = Series("registry_slo_rate_limit_header_errors")
REGISTRY_REQUESTS = Series("registry_slo_registry_requests")
REGISTRY_FAILURES = Series("registry_slo_registry_request_failures")
REGISTRY_DURATION = Series("registry_slo_registry_request_duration_seconds")
TAG_OVERWRITES = Series("registry_slo_registry_tag_overwrites")
STORAGE_USED = Series("registry_slo_registry_storage_used_bytes")
STORAGE_CAPACITY = Series("registry_slo_registry_storage_capacity_bytes")
INGEST_LINES = Series("registry_slo_ingest_lines")
GC_RUNS = Series("registry_slo_gc_runs")
GC_BLOBS_DELETED = Series("registry_slo_gc_blobs_deleted")
GC_LAST_SUCCESS = Series("registry_slo_gc_last_success_timestamp_seconds")
GC_RECLAIMED = Series("registry_slo_gc_reclaimed_bytes")


# -- window and bucket layouts -------------------------------------------------------------

MINUTE = 60
HOUR = 60 * MINUTE
DAY = 24 * HOUR

ALERT_WINDOWS: tuple[int, ...] = (
    5 * MINUTE, 30 * MINUTE, HOUR, 2 * HOUR, 6 * HOUR, DAY, 3 * DAY
)
"""The short and long windows of the burn-rate table (seconds, ascending); an SLO's
period is at least the longest."""

DURATION_BUCKETS: tuple[float, ...] = (
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0,
)
"""Request and probe duration histogram boundaries (seconds); latency SLO thresholds
must be one of them."""

NEAR_THRESHOLD = 0.08
"""Around each latency SLO threshold ``T`` the duration histograms gain boundaries at
``T * (1 - NEAR_THRESHOLD)`` and ``T * (1 + NEAR_THRESHOLD)``, so a quantile that
``histogram_quantile`` reads between them is off by at most 8.7 % (a bucket ``[a, b]``
bounds the error by ``(b - a) / a``)."""


def duration_buckets(thresholds: Iterable[float] = ()) -> tuple[float, ...]:
    """The duration histogram boundaries for these latency SLO thresholds (seconds):
    :data:`DURATION_BUCKETS` plus :data:`NEAR_THRESHOLD` neighbours of each threshold."""
    bounds = set(DURATION_BUCKETS)
    for threshold in thresholds:
        bounds.update(round(threshold * factor, 6)
                      for factor in (1 - NEAR_THRESHOLD, 1 + NEAR_THRESHOLD))
    return tuple(sorted(bounds))


LAG_BUCKETS: tuple[float, ...] = (
    0.5, 1.0, 2.0, 5.0, 10.0, 15.0, 20.0, 30.0, 45.0, 60.0, 120.0, 300.0, 600.0, 1800.0,
    3600.0,
)
"""Replication lag histogram boundaries (seconds)."""
