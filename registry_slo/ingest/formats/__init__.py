"""Log formats: each turns one line into an Observation, an Ignored verdict, or Rejected.

=======================  ==========================================================
``distribution``         the distribution registry's logrus log (JSON, logstash, text)
``distribution-access``  its access log (Apache combined format, stdout)
``harbor-audit``         Harbor's audit log forwarded to syslog
``zot-audit``            zot's JSON audit log
``jsonl``                any JSON-lines log, through a field mapping
``kubernetes-events``    Kubernetes Events: the kubelet's image pulls, per node
``distribution-gc``      the distribution registry's garbage collector's output: no
                         operations, but runs (:class:`GcReport` verdicts)
=======================  ==========================================================
"""

from __future__ import annotations

from collections.abc import Collection

from registry_slo.config import FORMAT_NAMES, JsonlMapping, LogFormat
from registry_slo.ingest.formats._base import (
    ALREADY_PRESENT,
    AUTH_CHALLENGE,
    BLANK,
    DUPLICATE,
    IGNORED_REASONS,
    NOT_AN_OPERATION,
    NOT_REGISTRY_API,
    OTHER_REGISTRY,
    PROBE_TRAFFIC,
    REJECTED_REASONS,
    Ignored,
    Parser,
    Rejected,
    StatefulParser,
    check_values,
)
from registry_slo.ingest.formats._gc_facts import (
    GC_KINDS,
    GC_RESULTS,
    GcDeleted,
    GcFact,
    GcKind,
    GcLastSuccess,
    GcReport,
    GcResult,
    GcRunEnded,
    GcSummary,
)
from registry_slo.ingest.formats._http import (
    PROBE_AGENT_PREFIX,
    classify,
    classify_uncached,
    go_duration,
    is_probe,
    outcome,
    rfc3339,
    split_reference,
)
from registry_slo.ingest.formats.access import AccessLogParser
from registry_slo.ingest.formats.distribution import DistributionParser
from registry_slo.ingest.formats.gc import DistributionGcParser
from registry_slo.ingest.formats.harbor import HarborAuditParser
from registry_slo.ingest.formats.jsonl import JsonlParser
from registry_slo.ingest.formats.kubernetes import KubernetesEventsParser
from registry_slo.ingest.formats.zot import ZotAuditParser

__all__ = [
    "ALREADY_PRESENT",
    "AUTH_CHALLENGE",
    "BLANK",
    "DUPLICATE",
    "FORMAT_NAMES",
    "GC_KINDS",
    "GC_RESULTS",
    "IGNORED_REASONS",
    "NOT_AN_OPERATION",
    "NOT_REGISTRY_API",
    "OTHER_REGISTRY",
    "PROBE_AGENT_PREFIX",
    "PROBE_TRAFFIC",
    "REJECTED_REASONS",
    "AccessLogParser",
    "DistributionGcParser",
    "DistributionParser",
    "GcDeleted",
    "GcFact",
    "GcKind",
    "GcLastSuccess",
    "GcReport",
    "GcResult",
    "GcRunEnded",
    "GcSummary",
    "HarborAuditParser",
    "Ignored",
    "JsonlParser",
    "KubernetesEventsParser",
    "Parser",
    "Rejected",
    "StatefulParser",
    "ZotAuditParser",
    "check_values",
    "classify",
    "classify_uncached",
    "go_duration",
    "is_probe",
    "make_parser",
    "outcome",
    "rfc3339",
    "split_reference",
]


def make_parser(
    format: LogFormat,
    region: str,
    source: str,
    mapping: JsonlMapping | None = None,
    registries: Collection[str] | None = None,
) -> Parser:
    """Build the parser of one source.

    Args:
        format: one of :data:`FORMAT_NAMES`.
        region: the ``region`` of its observations.
        source: the source's name.
        mapping: the field mapping (``jsonl`` only, where it is required).
        registries: the image registry hosts whose pulls count (``kubernetes-events``
            only; ``None``: every registry).

    Returns:
        The parser.

    Raises:
        ValueError: an unknown format, or ``jsonl`` without a mapping.
    """
    if format == "distribution":
        return DistributionParser(region, source)
    if format == "distribution-access":
        return AccessLogParser(region, source)
    if format == "harbor-audit":
        return HarborAuditParser(region, source)
    if format == "zot-audit":
        return ZotAuditParser(region, source)
    if format == "jsonl":
        if mapping is None:
            raise ValueError("format jsonl needs a mapping")
        return JsonlParser(region, source, mapping)
    if format == "kubernetes-events":
        return KubernetesEventsParser(region, source, registries)
    if format == "distribution-gc":
        return DistributionGcParser(region, source)
    raise ValueError(f"unknown format {format!r} (known: {', '.join(FORMAT_NAMES)})")
