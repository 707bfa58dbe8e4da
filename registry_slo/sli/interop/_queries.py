"""Recognising the exporter's series in other tools' PromQL, to map an SLI back to a kind.

This is not a PromQL parser: it finds the vector selectors (metric name and label
matchers) in a query and decides from *which* of the exporter's series appear, with
which ``probe``, ``region`` and ``le`` matchers, which SLI the query measures. A query
that reads anything else, or selects the exporter's series in a way that changes what
is counted (``reason="timeout"``, a regex on ``probe``), is reported as not mappable,
with the reason.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from registry_slo.generate._model import (
    DURATION_BUCKET,
    DURATION_COUNT,
    PROBE_FAILURES,
    PROBE_REQUESTS,
    REPLICATION_LAG,
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
_KEYWORDS = frozenset({
    "by", "without", "on", "ignoring", "group_left", "group_right", "bool", "offset",
    "and", "or", "unless", "inf", "nan", "atan2",
})
_NUMBER = r"([0-9]+(?:\.[0-9]*)?(?:[eE][-+]?[0-9]+)?)"
_OWN = (PROBE_FAILURES, PROBE_REQUESTS, DURATION_BUCKET, DURATION_COUNT, REPLICATION_LAG)
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


def _labels_of(sels: Sequence[Selector]) -> tuple[str | None, tuple[str, ...] | None,
                                                   list[str]]:
    """The probe and regions the selectors agree on, and notes on dropped matchers."""
    probes: set[str | None] = set()
    regions: set[tuple[str, ...] | None] = set()
    notes: list[str] = []
    for sel in sels:
        probe = sel.matchers.get("probe")
        if probe is not None and probe[0] != "=":
            raise MappingError(
                f"{sel.metric} selects probes with {probe[0]}{probe[1]!r}: an SLI is one probe"
            )
        probes.add(None if probe is None else probe[1])
        region = sel.matchers.get("region")
        if region is None:
            regions.add(None)
        elif region[0] == "=":
            regions.add((region[1],))
        elif region[0] == "=~" and re.fullmatch(r"[a-z0-9._-]+(\|[a-z0-9._-]+)*", region[1]):
            regions.add(tuple(region[1].split("|")))
        else:
            raise MappingError(f"{sel.metric} selects regions with {region[0]}{region[1]!r}")
        for label, (op, value) in sel.matchers.items():
            if label in ("probe", "region", "le"):
                continue
            if label in _IGNORED_LABELS:
                notes.append(f"dropped the matcher {label}{op}{value!r} on {sel.metric}: "
                             "the exporter's SLIs are per region")
                continue
            raise MappingError(
                f"{sel.metric}{{{label}{op}{value!r}}} counts a subset the exporter's SLIs "
                "do not have (they count every run of a probe)"
            )
    if len(probes) > 1:
        raise MappingError(f"the queries select different probes: {sorted(map(str, probes))}")
    if len(regions) > 1:
        raise MappingError("the queries select different regions")
    return probes.pop(), regions.pop(), notes


def _foreign(sels: Sequence[Selector]) -> None:
    others = sorted({s.metric for s in sels if s.metric not in _OWN})
    if others:
        raise MappingError(
            f"reads {', '.join(others)}, not the exporter's series (the exporter's SLIs are "
            "built on registry_slo_probe_* and registry_slo_replication_lag_seconds)"
        )
    if not sels:
        raise MappingError("no metric found in the query")


def _le(sels: Sequence[Selector]) -> float:
    bounds = {s.matchers.get("le") for s in sels if s.metric == DURATION_BUCKET}
    if len(bounds) != 1 or None in bounds:
        raise MappingError(f"{DURATION_BUCKET} needs exactly one le=\"…\" matcher")
    (bound,) = bounds
    assert bound is not None
    if bound[0] != "=":
        raise MappingError(f"{DURATION_BUCKET} with le{bound[0]}{bound[1]!r}")
    try:
        return float(bound[1])
    except ValueError:
        raise MappingError(f"le={bound[1]!r} is not a number") from None


def _probe_sli(kind: str, probe: str | None, threshold: float | None = None) -> dict[str, Any]:
    if probe is None:
        raise MappingError("the queries do not select one probe (no probe=\"…\" matcher)")
    if kind == "probe_success" and probe == "auth":
        return {"kind": "auth_success"}
    sli: dict[str, Any] = {"kind": kind, "probe": probe}
    if threshold is not None:
        sli["threshold"] = threshold
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
    probe, regions, notes = _labels_of(first + whole)
    first_metrics = {s.metric for s in first}
    total_metrics = {s.metric for s in whole}
    # Success: bad = failures, good = requests - failures, over requests.
    success = (
        total_metrics == {PROBE_REQUESTS}
        and PROBE_FAILURES in first_metrics
        and first_metrics <= {PROBE_FAILURES, PROBE_REQUESTS}
        and good == (PROBE_REQUESTS in first_metrics)
    )
    if success:
        return SLIMatch(_probe_sli("probe_success", probe), regions, notes)
    # Latency: good = bucket{le}, bad = count - bucket{le}, over count.
    latency = (
        total_metrics == {DURATION_COUNT}
        and DURATION_BUCKET in first_metrics
        and first_metrics <= {DURATION_BUCKET, DURATION_COUNT}
        and good != (DURATION_COUNT in first_metrics)
    )
    if latency:
        return SLIMatch(_probe_sli("probe_latency", probe, _le(first)), regions, notes)
    raise MappingError(
        f"{'good' if good else 'bad'} events from {', '.join(sorted(first_metrics))} over "
        f"{', '.join(sorted(total_metrics))} is not a success or latency ratio of a probe"
    )


def match_raw(query: str) -> SLIMatch:
    """Recognise a raw ratio query (an error or a success ratio: the SLI is the same).

    Raises:
        MappingError: saying why the query does not map.
    """
    sels = selectors(query)
    _foreign(sels)
    probe, regions, notes = _labels_of(sels)
    metrics = {s.metric for s in sels}
    if metrics == {REPLICATION_LAG}:
        threshold = re.search(rf"(?:<=|<|>|>=)\s*(?:bool\s*)?{_NUMBER}", query)
        if threshold is None:
            raise MappingError(f"{REPLICATION_LAG} without a threshold comparison")
        return SLIMatch({"kind": "replication_lag", "threshold": float(threshold.group(1))},
                        regions, notes)
    if metrics == {PROBE_FAILURES, PROBE_REQUESTS}:
        return SLIMatch(_probe_sli("probe_success", probe), regions, notes)
    if metrics == {DURATION_BUCKET, DURATION_COUNT}:
        return SLIMatch(_probe_sli("probe_latency", probe, _le(sels)), regions, notes)
    raise MappingError(f"a ratio of {', '.join(sorted(metrics))} is not one of the SLI kinds")


def match_threshold(query: str, op: str | None, value: float | None) -> SLIMatch:
    """Recognise a threshold SLI: the metric compared with ``value`` by ``op``.

    Raises:
        MappingError: saying why it does not map.
    """
    sels = selectors(query)
    _foreign(sels)
    _, regions, notes = _labels_of(sels)
    if {s.metric for s in sels} != {REPLICATION_LAG}:
        raise MappingError("a threshold SLI maps only on registry_slo_replication_lag_seconds")
    if op not in ("lte", "lt") or value is None:
        raise MappingError(
            f"replication lag needs op lte (or lt) and a value in seconds, not op={op!r}"
        )
    if op == "lt":
        notes.append(f"op lt {value:g} mapped to a threshold of {value:g}s (at most)")
    return SLIMatch({"kind": "replication_lag", "threshold": float(value)}, regions, notes)
