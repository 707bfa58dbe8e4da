"""Recognising the exporter's series in other tools' PromQL, to map an SLI back to a kind.

This is not a PromQL parser: it finds the vector selectors (metric name and label
matchers) in a query and decides from *which* of the exporter's series appear, and with
which matchers, which SLI the query measures:

- probe series (``registry_slo_probe_*``, ``registry_slo_replication_lag_seconds``):
  ``probe``, ``region`` and ``le``;
- traffic series (``registry_slo_registry_requests_total``,
  ``registry_slo_registry_request_failures_total``,
  ``registry_slo_registry_request_duration_seconds``): ``region``, ``operation``
  (required), ``source``, ``reason`` (failures only) and ``le``.

A query that reads anything else, mixes probe and traffic series, or selects the
exporter's series in a way that changes what is counted (``reason="timeout"`` on a
probe, a regex on ``probe``, ``code`` on requests), is reported as not mappable, with
the reason.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from registry_slo.vocabulary import (
    OPERATIONS,
    PROBE_DURATION,
    PROBE_FAILURES,
    PROBE_REQUESTS,
    REGISTRY_DURATION,
    REGISTRY_FAILURES,
    REGISTRY_REQUESTS,
    REPLICATION_LAG,
    Reason,
)

__all__ = [
    "MappingError",
    "SLIMatch",
    "Selector",
    "match_events",
    "match_raw",
    "match_threshold",
    "selectors",
]

_TEMPLATE = re.compile(r"\{\{\s*\.window\s*\}\}")
_BRACED = re.compile(r"([A-Za-z_:][A-Za-z0-9_:]*)?\s*\{([^{}]*)\}")
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
_LABEL_LIST = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)")
_RANGE = re.compile(r"\[[^\]]*\]")
_IDENTIFIER = re.compile(r"(?<![A-Za-z0-9_:.])([A-Za-z_:][A-Za-z0-9_:]*)")
_MATCHER = re.compile(r'([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"')
_ALTERNATION = re.compile(r"[a-z0-9._-]+(\|[a-z0-9._-]+)*")
_KEYWORDS = frozenset({
    "by", "without", "on", "ignoring", "group_left", "group_right", "bool", "offset",
    "and", "or", "unless", "inf", "nan", "atan2",
})
_NUMBER = r"([0-9]+(?:\.[0-9]*)?(?:[eE][-+]?[0-9]+)?)"
_PROBE_SERIES = (PROBE_FAILURES.total, PROBE_REQUESTS.total, PROBE_DURATION.bucket,
                 PROBE_DURATION.count, REPLICATION_LAG.name)
_TRAFFIC_SERIES = (REGISTRY_FAILURES.total, REGISTRY_REQUESTS.total, REGISTRY_DURATION.bucket,
                   REGISTRY_DURATION.count)
_OWN = _PROBE_SERIES + _TRAFFIC_SERIES
_BUCKETS = (PROBE_DURATION.bucket, REGISTRY_DURATION.bucket)
_REASONS = tuple(str(reason) for reason in Reason)
_IGNORED_LABELS = frozenset({"job", "instance"})
"""Scrape labels a foreign query may filter on: dropped (the exporter's SLIs are per
region), with a note."""


class MappingError(Exception):
    """The query cannot be expressed as one of the exporter's SLI kinds (says why)."""


@dataclass(frozen=True)
class Selector:
    """A vector selector: a metric name and its label matchers ``(op, value)``."""

    metric: str
    matchers: dict[str, tuple[str, str]] = field(default_factory=dict)


@dataclass
class SLIMatch:
    """An SLI recognised in queries.

    Attributes:
        sli: the ``sli`` mapping of an SLO (``{kind: probe_success, probe: pull}``).
        regions: the regions the queries select (``None``: every region).
        notes: what was dropped on the way (e.g. a ``job`` matcher).
    """

    sli: dict[str, Any]
    regions: tuple[str, ...] | None
    notes: list[str] = field(default_factory=list)


def selectors(query: str) -> list[Selector]:
    """Every vector selector in ``query`` (Sloth's ``{{.window}}`` is allowed)."""
    text = _TEMPLATE.sub("5m", query)
    found: list[Selector] = []
    for match in _BRACED.finditer(text):
        name, body = match.group(1), match.group(2)
        matchers = {m.group(1): (m.group(2), m.group(3)) for m in _MATCHER.finditer(body)}
        if not name:
            named = matchers.pop("__name__", None)
            if named is None or named[0] != "=":
                raise MappingError(f"a selector without a metric name: {{{body}}}")
            name = named[1]
        found.append(Selector(name, matchers))
    # What is left: bare metric names, among functions, keywords, label lists, numbers.
    rest = _BRACED.sub(" ", text)
    rest = _STRING.sub(" ", rest)
    rest = _LABEL_LIST.sub(" ", rest)
    rest = _RANGE.sub(" ", rest)
    for match in _IDENTIFIER.finditer(rest):
        name = match.group(1)
        if name.lower() in _KEYWORDS or rest[match.end():].lstrip().startswith("("):
            continue
        found.append(Selector(name))
    return found


@dataclass
class _Labels:
    """What the selectors of an SLI's queries agree on (``None``: no matcher)."""

    traffic: bool
    probe: str | None = None
    regions: tuple[str, ...] | None = None
    operations: tuple[str, ...] | None = None
    sources: tuple[str, ...] | None = None
    errors: tuple[str, ...] | None = None
    notes: list[str] = field(default_factory=list)


def _values(sel: Selector, label: str, what: str,
            known: Sequence[str] | None = None) -> tuple[str, ...] | None:
    """The values ``label="a"`` or ``label=~"a|b"`` selects, in the order written."""
    matcher = sel.matchers.get(label)
    if matcher is None:
        return None
    op, value = matcher
    if op == "=":
        values: tuple[str, ...] = (value,)
    elif op == "=~" and _ALTERNATION.fullmatch(value):
        values = tuple(dict.fromkeys(value.split("|")))
    else:
        raise MappingError(f"{sel.metric} selects {what} with {op}{value!r}")
    unknown = [v for v in values if known is not None and v not in known]
    if unknown:
        raise MappingError(
            f"{sel.metric} selects {label} {', '.join(map(repr, unknown))}, not one the "
            f"exporter counts (known: {', '.join(known or ())})"
        )
    return values


def _agreed(values: Sequence[tuple[str, ...] | None], what: str) -> tuple[str, ...] | None:
    """The one selection every selector makes (as a set; the first one's order)."""
    if len({None if v is None else frozenset(v) for v in values}) > 1:
        raise MappingError(f"the queries select different {what}")
    return values[0] if values else None


def _other_matchers(sel: Selector, allowed: Sequence[str], counted: str,
                    notes: list[str]) -> None:
    for label, (op, value) in sel.matchers.items():
        if label in allowed:
            continue
        if label in _IGNORED_LABELS:
            notes.append(f"dropped the matcher {label}{op}{value!r} on {sel.metric}: "
                         "the exporter's SLIs are per region")
            continue
        raise MappingError(
            f"{sel.metric}{{{label}{op}{value!r}}} counts a subset the exporter's SLIs "
            f"do not have (they count {counted})"
        )


def _probe_labels(sels: Sequence[Selector]) -> _Labels:
    probes: set[str | None] = set()
    regions: list[tuple[str, ...] | None] = []
    notes: list[str] = []
    for sel in sels:
        probe = sel.matchers.get("probe")
        if probe is not None and probe[0] != "=":
            raise MappingError(
                f"{sel.metric} selects probes with {probe[0]}{probe[1]!r}: an SLI is one probe"
            )
        probes.add(None if probe is None else probe[1])
        regions.append(_values(sel, "region", "regions"))
        _other_matchers(sel, ("probe", "region", "le"), "every run of a probe", notes)
    if len(probes) > 1:
        raise MappingError(f"the queries select different probes: {sorted(map(str, probes))}")
    if len(set(regions)) > 1:
        raise MappingError("the queries select different regions")
    return _Labels(False, probe=probes.pop(), regions=regions[0], notes=notes)


def _traffic_labels(sels: Sequence[Selector]) -> _Labels:
    regions: list[tuple[str, ...] | None] = []
    operations: list[tuple[str, ...] | None] = []
    sources: list[tuple[str, ...] | None] = []
    errors: list[tuple[str, ...] | None] = []
    notes: list[str] = []
    for sel in sels:
        if "probe" in sel.matchers:
            raise MappingError(
                f"{sel.metric} has no probe label: probe=\"…\" selects the probes' series "
                "(registry_slo_probe_*), not traffic"
            )
        if "reason" in sel.matchers and sel.metric != REGISTRY_FAILURES.total:
            raise MappingError(
                f"{sel.metric} has no reason label: failure reasons are selected on "
                f"{REGISTRY_FAILURES.total}"
            )
        regions.append(_values(sel, "region", "regions"))
        selected = _values(sel, "operation", "operations", OPERATIONS)
        if selected is None:
            raise MappingError(
                f"{sel.metric} has no operation=\"…\" matcher: a traffic SLI needs "
                f"operations (of {', '.join(OPERATIONS)})"
            )
        operations.append(selected)
        sources.append(_values(sel, "source", "sources"))
        if sel.metric == REGISTRY_FAILURES.total:
            errors.append(_values(sel, "reason", "failure reasons", _REASONS))
        _other_matchers(sel, ("region", "operation", "source", "reason", "le"),
                        "every request of their operations", notes)
    if len(set(regions)) > 1:
        raise MappingError("the queries select different regions")
    labels = _Labels(
        True,
        regions=regions[0],
        operations=_agreed(operations, "operations"),
        sources=_agreed(sources, "sources"),
        errors=_agreed(errors, "failure reasons"),
        notes=notes,
    )
    if labels.sources is None:
        notes.append("no source matcher: the SLI counts the region's ingest log sources "
                     "(the default), not every source")
    if errors and labels.errors is None:
        # Failures of every reason over requests: every reason is an error.
        labels.errors = _REASONS
    return labels


def _labels_of(sels: Sequence[Selector]) -> _Labels:
    """What the selectors agree on: probe or traffic series, and their matchers."""
    probe = sorted({s.metric for s in sels if s.metric in _PROBE_SERIES})
    traffic = sorted({s.metric for s in sels if s.metric in _TRAFFIC_SERIES})
    if probe and traffic:
        raise MappingError(
            f"the queries mix probe series ({', '.join(probe)}) and traffic series "
            f"({', '.join(traffic)}): an SLI reads one or the other"
        )
    return _traffic_labels(sels) if traffic else _probe_labels(sels)


def _foreign(sels: Sequence[Selector]) -> None:
    others = sorted({s.metric for s in sels if s.metric not in _OWN})
    if others:
        raise MappingError(
            f"reads {', '.join(others)}, not the exporter's series (the exporter's SLIs are "
            "built on registry_slo_probe_*, registry_slo_replication_lag_seconds and the "
            "ingested traffic's registry_slo_registry_request* series)"
        )
    if not sels:
        raise MappingError("no metric found in the query")


def _le(sels: Sequence[Selector]) -> float:
    buckets = [s for s in sels if s.metric in _BUCKETS]
    name = buckets[0].metric if buckets else PROBE_DURATION.bucket
    bounds = {s.matchers.get("le") for s in buckets}
    if len(bounds) != 1 or None in bounds:
        raise MappingError(f"{name} needs exactly one le=\"…\" matcher")
    (bound,) = bounds
    assert bound is not None
    if bound[0] != "=":
        raise MappingError(f"{name} with le{bound[0]}{bound[1]!r}")
    try:
        return float(bound[1])
    except ValueError:
        raise MappingError(f"le={bound[1]!r} is not a number") from None


def _sli(kind: str, labels: _Labels, threshold: float | None = None) -> dict[str, Any]:
    """The ``sli`` mapping of ``kind`` (``success`` or ``latency``) from the labels."""
    if labels.traffic:
        assert labels.operations is not None
        sli: dict[str, Any] = {"kind": f"traffic_{kind}",
                               "operations": list(labels.operations)}
        if labels.errors is not None:
            sli["errors"] = list(labels.errors)
    else:
        if labels.probe is None:
            raise MappingError("the queries do not select one probe (no probe=\"…\" matcher)")
        if kind == "success" and labels.probe == "auth":
            return {"kind": "auth_success"}
        sli = {"kind": f"probe_{kind}", "probe": labels.probe}
    if threshold is not None:
        sli["threshold"] = threshold
    if labels.sources is not None:
        sli["sources"] = list(labels.sources)
    return sli


def match_events(bad_or_good: str, total: str, good: bool = False) -> SLIMatch:
    """Recognise an events SLI: bad (or good) events over all events.

    Args:
        bad_or_good: the query counting bad events (or good ones when ``good``).
        total: the query counting all events.
        good: whether the first query counts good events.

    Raises:
        MappingError: saying why the queries do not map.
    """
    first, whole = selectors(bad_or_good), selectors(total)
    _foreign(first + whole)
    labels = _labels_of(first + whole)
    if labels.traffic:
        failures, requests = REGISTRY_FAILURES.total, REGISTRY_REQUESTS.total
        bucket, count = REGISTRY_DURATION.bucket, REGISTRY_DURATION.count
    else:
        failures, requests, bucket, count = (PROBE_FAILURES.total, PROBE_REQUESTS.total,
                                             PROBE_DURATION.bucket, PROBE_DURATION.count)
    first_metrics = {s.metric for s in first}
    total_metrics = {s.metric for s in whole}
    # Success: bad = failures, good = requests - failures, over requests.
    success = (
        total_metrics == {requests}
        and failures in first_metrics
        and first_metrics <= {failures, requests}
        and good == (requests in first_metrics)
    )
    if success:
        return SLIMatch(_sli("success", labels), labels.regions, labels.notes)
    # Latency: good = bucket{le}, bad = count - bucket{le}, over count.
    latency = (
        total_metrics == {count}
        and bucket in first_metrics
        and first_metrics <= {bucket, count}
        and good != (count in first_metrics)
    )
    if latency:
        return SLIMatch(_sli("latency", labels, _le(first)), labels.regions, labels.notes)
    what = "of registry requests" if labels.traffic else "of a probe"
    raise MappingError(
        f"{'good' if good else 'bad'} events from {', '.join(sorted(first_metrics))} over "
        f"{', '.join(sorted(total_metrics))} is not a success or latency ratio {what}"
    )


def match_raw(query: str) -> SLIMatch:
    """Recognise a raw ratio query (an error or a success ratio: the SLI is the same).

    Raises:
        MappingError: saying why the query does not map.
    """
    sels = selectors(query)
    _foreign(sels)
    labels = _labels_of(sels)
    regions, notes = labels.regions, labels.notes
    metrics = {s.metric for s in sels}
    if metrics == {REPLICATION_LAG.name}:
        threshold = re.search(rf"(?:<=|<|>|>=)\s*(?:bool\s*)?{_NUMBER}", query)
        if threshold is None:
            raise MappingError(f"{REPLICATION_LAG.name} without a threshold comparison")
        return SLIMatch({"kind": "replication_lag", "threshold": float(threshold.group(1))},
                        regions, notes)
    if metrics in ({PROBE_FAILURES.total, PROBE_REQUESTS.total},
                   {REGISTRY_FAILURES.total, REGISTRY_REQUESTS.total}):
        return SLIMatch(_sli("success", labels), regions, notes)
    if metrics in ({PROBE_DURATION.bucket, PROBE_DURATION.count},
                   {REGISTRY_DURATION.bucket, REGISTRY_DURATION.count}):
        return SLIMatch(_sli("latency", labels, _le(sels)), regions, notes)
    raise MappingError(f"a ratio of {', '.join(sorted(metrics))} is not one of the SLI kinds")


def match_threshold(query: str, op: str | None, value: float | None) -> SLIMatch:
    """Recognise a threshold SLI: the metric compared with ``value`` by ``op``.

    Raises:
        MappingError: saying why it does not map.
    """
    sels = selectors(query)
    _foreign(sels)
    labels = _labels_of(sels)
    if {s.metric for s in sels} != {REPLICATION_LAG.name}:
        raise MappingError("a threshold SLI maps only on registry_slo_replication_lag_seconds")
    if op not in ("lte", "lt") or value is None:
        raise MappingError(
            f"replication lag needs op lte (or lt) and a value in seconds, not op={op!r}"
        )
    notes = labels.notes
    if op == "lt":
        notes.append(f"op lt {value:g} mapped to a threshold of {value:g}s (at most)")
    return SLIMatch({"kind": "replication_lag", "threshold": float(value)}, labels.regions,
                    notes)
