"""OpenSLO v1: export the configured SLOs, import SLO documents that read the exporter's
series.

Export writes, per region, a ``Service`` (the registry in that region) and, per SLO and
region, an ``SLO`` with its indicator inline, reading the exporter's Prometheus series:

- probe success: ``ratioMetric`` with ``bad`` = ``registry_slo_probe_failures_total`` and
  ``total`` = ``registry_slo_probe_requests_total`` of the region and probe;
- probe latency: ``ratioMetric`` with ``good`` = the ``registry_slo_probe_duration_seconds``
  bucket at the threshold and ``total`` = its count;
- replication lag: ``thresholdMetric`` on ``max(registry_slo_replication_lag_seconds)``
  with the objective ``op: lte`` and the threshold as ``value``;
- traffic success: ``ratioMetric`` with ``bad`` =
  ``registry_slo_registry_request_failures_total`` of the SLI's ``errors`` (``reason``)
  and ``total`` = ``registry_slo_registry_requests_total``, both of the region, the
  ingest sources the SLO counts there (``source``) and the SLI's ``operations``;
- traffic latency: ``ratioMetric`` with ``good`` = the
  ``registry_slo_registry_request_duration_seconds`` bucket at the threshold and
  ``total`` = its count, selected as for traffic success.

The queries select the same series, with the same matchers, as the generated recording
rules: both render :func:`registry_slo.generate.indicators.indicator`.

Every ``SLO`` has ``budgetingMethod: Occurrences``, a rolling ``timeWindow`` of the
period, and the annotations ``registry-slo.dev/slo`` and ``registry-slo.dev/region`` so
that importing the export gives back the configuration. (OpenSLO requires an annotation
prefix to be a DNS subdomain; exports before 0.x used ``registry-slo/…``, which import
still reads.) Every exported document is valid under OpenSLO's published v1 JSON schemas.

Import maps an ``SLO`` document onto the exporter's SLI kinds when its queries read the
exporter's series (see :mod:`registry_slo.interop._queries`); indicators may be inline
or ``indicatorRef`` to an ``SLI`` document of the same input, and a metric source may be
a ``metricSourceRef`` to a ``DataSource`` document of the same input. A document of the
wrong shape is refused with the field that is wrong. The documents of one SLO
in several regions merge back into one SLO with those regions; a traffic SLO keeps the
ingest sources its queries select, the union over its regions. What does not map is
reported, never guessed.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, assert_never

from registry_slo._units import format_duration
from registry_slo.config import Settings, SLOSpec, SLOTarget
from registry_slo.generate._model import num
from registry_slo.generate.indicators import EventRatio, Indicator, LagThreshold, indicator
from registry_slo.interop._queries import (
    MappingError,
    SLIMatch,
    match_events,
    match_raw,
    match_threshold,
)
from registry_slo.interop._result import (
    ImportResult,
    clean_labels,
    dns_label,
    percent_from_ratio,
    slo_name,
)
from registry_slo.vocabulary import ALERT_WINDOWS, DAY

__all__ = ["API_VERSION", "export_openslo", "import_openslo"]

API_VERSION = "openslo/v1"
ANNOTATION_PREFIX = "registry-slo.dev/"
ANNOTATION_SLO = ANNOTATION_PREFIX + "slo"
ANNOTATION_REGION = ANNOTATION_PREFIX + "region"
# Written by earlier exports: not a valid OpenSLO prefix (no dot), still read on import.
_OLD_PREFIX = "registry-slo/"
_DURATION = re.compile(r"^([0-9]+)([mhdwMQY])$")
_UNIT_DAYS = {"d": 1, "w": 7, "M": 30, "Q": 90, "Y": 365}  # OpenSLO's own lengths


def _metric(query: str) -> dict[str, Any]:
    return {"metricSource": {"type": "Prometheus", "spec": {"query": query}}}


def _indicator(target: SLOTarget, found: Indicator) -> dict[str, Any]:
    match found:
        case EventRatio(counted, total):
            spec: dict[str, Any] = {"ratioMetric": {
                "counter": True,
                "good" if found.good else "bad": _metric(f"sum({counted})"),
                "total": _metric(f"sum({total})"),
            }}
        case LagThreshold(lag):
            spec = {"thresholdMetric": _metric(f"max({lag})")}
        case _:
            assert_never(found)
    return {"metadata": {"name": dns_label(target.slo.name, target.region, "sli")},
            "spec": spec}


def _objective(slo: SLOSpec, found: Indicator) -> dict[str, Any]:
    objective: dict[str, Any] = {"displayName": f"{num(slo.objective)}%",
                                 "target": slo.objective_ratio}
    match found:
        case LagThreshold(threshold=threshold):
            # A threshold metric's objective says which values are good.
            return {**objective, "op": "lte", "value": threshold}
        case EventRatio():
            return objective
        case other:
            assert_never(other)


def export_openslo(settings: Settings) -> list[dict[str, Any]]:
    """The configuration's SLOs as OpenSLO v1 documents.

    Returns:
        A ``Service`` per region with SLOs, then an ``SLO`` per SLO and region.

    Raises:
        GenerationError: when a latency threshold is not a histogram bucket boundary.
    """
    targets = settings.slo_targets()
    documents: list[dict[str, Any]] = []
    for region in dict.fromkeys(t.region for t in targets):
        documents.append({
            "apiVersion": API_VERSION,
            "kind": "Service",
            "metadata": {"name": dns_label(region),
                         "annotations": {ANNOTATION_REGION: region}},
            "spec": {"description": f"The OCI registry in region {region}, as measured "
                                    "by registry-slo"},
        })
    for target in targets:
        slo = target.slo
        found = indicator(target)
        metadata: dict[str, Any] = {
            "name": dns_label(slo.name, target.region),
            "displayName": f"{slo.name} ({target.region})",
            "annotations": {ANNOTATION_SLO: slo.name, ANNOTATION_REGION: target.region},
        }
        if slo.labels:
            metadata["labels"] = dict(sorted(slo.labels.items()))
        spec: dict[str, Any] = {}
        if slo.description:
            spec["description"] = slo.description
        spec.update({
            "service": dns_label(target.region),
            "indicator": _indicator(target, found),
            "timeWindow": [{"duration": format_duration(slo.period_seconds), "isRolling": True}],
            "budgetingMethod": "Occurrences",
            "objectives": [_objective(slo, found)],
        })
        documents.append({"apiVersion": API_VERSION, "kind": "SLO", "metadata": metadata,
                          "spec": spec})
    return documents


# -- import ------------------------------------------------------------------------------


def _kind_of(value: Any) -> str:
    match value:
        case None:
            return "null"
        case bool():
            return "a boolean"
        case int() | float():
            return "a number"
        case str():
            return "a string"
        case Mapping():
            return "a mapping"
        case list():
            return "a list"
        case _:
            return type(value).__name__


def _mapping(value: Any, field: str, *, optional: bool = True) -> Mapping[str, Any]:
    """``value`` as a mapping; ``None`` is an empty one when ``optional``."""
    if value is None and optional:
        return {}
    if not isinstance(value, Mapping):
        raise MappingError(f"{field}: must be a mapping, not {_kind_of(value)}")
    return value


def _list(value: Any, field: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise MappingError(f"{field}: must be a list, not {_kind_of(value)}")
    return value


def _number(value: Any, field: str) -> float:
    # YAML gives numbers as int or float; a bool is not a number here.
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise MappingError(f"{field}: must be a number, not {_kind_of(value)} ({value!r})")
    number = float(value)
    if number != number or number in (float("inf"), float("-inf")):
        raise MappingError(f"{field}: must be a finite number, not {value!r}")
    return number


class _Sources:
    """Resolves a metric source, inline or by ``metricSourceRef`` to a ``DataSource``."""

    def __init__(self, datasources: Mapping[str, Mapping[str, Any]]) -> None:
        self._datasources = datasources

    def query(self, metric: Any, field: str) -> str:
        source = _mapping(_mapping(metric, field).get("metricSource"),
                          f"{field}.metricSource", optional=False)
        where = f"{field}.metricSource"
        kind = source.get("type")
        ref = source.get("metricSourceRef")
        if ref is not None:
            datasource = self._datasources.get(str(ref))
            if datasource is None:
                raise MappingError(f"{where}.metricSourceRef {ref!r}: no DataSource document "
                                   "of that name in the input")
            kind = kind or _mapping(datasource.get("spec"), f"DataSource {ref!r} spec").get(
                "type")
        if not isinstance(kind, str) or kind.lower() != "prometheus":
            raise MappingError(f"{where}.type {kind or '(none)'!r} is not Prometheus")
        query = _mapping(source.get("spec"), f"{where}.spec").get("query")
        if not isinstance(query, str) or not query.strip():
            raise MappingError(f"{where}.spec.query: no Prometheus query")
        return query


def _match_indicator(spec: Mapping[str, Any], objective: Mapping[str, Any],
                     sources: _Sources) -> SLIMatch:
    if spec.get("ratioMetric") is not None:
        ratio = _mapping(spec["ratioMetric"], "ratioMetric")
        if ratio.get("raw") is not None:
            # rawType (success or failure ratio) does not change which SLI it is.
            return match_raw(sources.query(ratio["raw"], "ratioMetric.raw"))
        total = sources.query(ratio.get("total"), "ratioMetric.total")
        if ratio.get("bad") is not None:
            return match_events(sources.query(ratio["bad"], "ratioMetric.bad"), total)
        if ratio.get("good") is not None:
            return match_events(sources.query(ratio["good"], "ratioMetric.good"), total,
                                good=True)
        raise MappingError("ratioMetric has neither good nor bad")
    if spec.get("thresholdMetric") is not None:
        value = objective.get("value")
        return match_threshold(
            sources.query(spec["thresholdMetric"], "thresholdMetric"), objective.get("op"),
            None if value is None else _number(value, "objectives[0].value"),
        )
    raise MappingError("the indicator has neither ratioMetric nor thresholdMetric")


def _annotation(annotations: Mapping[str, Any], key: str) -> str | None:
    for prefix in (ANNOTATION_PREFIX, _OLD_PREFIX):
        value = annotations.get(prefix + key)
        if value:
            return str(value)
    return None


def _time_slices(method: str, objective: Mapping[str, Any], notes: list[str]) -> None:
    """Check a replication-lag SLO budgeted by time slices.

    The exporter judges every lag sample (each probe interval is a slice, good when the
    lag is within the threshold). Slices good at less than 100 % promise something else
    (a 1 h slice good at 50 % forgives half an hour of lag): refused. Slices at 100 %
    differ only in how long a bad sample counts: noted.

    Raises:
        MappingError: for slices good at less than 100 %.
    """
    if method != "Timeslices":
        return
    window = objective.get("timeSliceWindow")
    raw_target = objective.get("timeSliceTarget")
    target = 1.0 if raw_target is None else _number(raw_target, "objectives[0].timeSliceTarget")
    if target < 1:
        raise MappingError(
            f"objectives[0].timeSliceTarget {num(percent_from_ratio(target))} % "
            f"(budgetingMethod Timeslices, {window or 'unstated'} slices): the exporter "
            "judges every lag sample against the threshold; mapping it would change what "
            "the SLO promises")
    if window is not None:
        notes.append(f"objectives[0].timeSliceWindow {window}: each lag sample (one per probe "
                     "interval) is judged on its own, not in slices of that length")


def _period(spec: Mapping[str, Any], notes: list[str]) -> str | None:
    windows = _list(spec.get("timeWindow"), "spec.timeWindow")
    if not windows:
        return None
    if len(windows) > 1:
        notes.append(f"{len(windows)} time windows: only the first one is used")
    window = _mapping(windows[0], "spec.timeWindow[0]")
    duration = str(window.get("duration", ""))
    found = _DURATION.match(duration)
    if found is None or found.group(2) not in _UNIT_DAYS:
        notes.append(f"timeWindow {duration!r}: not whole days; the default period 30d is used")
        return None
    days = int(found.group(1)) * _UNIT_DAYS[found.group(2)]
    if days * DAY < ALERT_WINDOWS[-1]:
        notes.append(f"timeWindow {duration!r}: shorter than "
                     f"{format_duration(ALERT_WINDOWS[-1])}, the longest alert window; "
                     "the default period 30d is used")
        return None
    if not window.get("isRolling", False):
        notes.append(f"timeWindow {duration!r} is calendar-aligned; the exporter's period "
                     "is rolling")
    return f"{days}d"


def _target_percent(objective: Mapping[str, Any]) -> float:
    if objective.get("targetPercent") is not None:
        return _number(objective["targetPercent"], "objectives[0].targetPercent")
    if objective.get("target") is not None:
        return percent_from_ratio(_number(objective["target"], "objectives[0].target"))
    raise MappingError("objectives[0]: no target (or targetPercent)")


def _slo(document: Mapping[str, Any], slis: Mapping[str, Mapping[str, Any]],
         sources: _Sources) -> tuple[dict[str, Any], list[str]]:
    """The ``slos:`` entry of one SLO document, with notes on what was dropped.

    Raises:
        MappingError: naming the field, when the document does not map.
    """
    metadata = _mapping(document.get("metadata"), "metadata")
    spec = _mapping(document.get("spec"), "spec")
    notes: list[str] = []
    indicator = spec.get("indicator")
    if indicator is None and spec.get("indicatorRef") is not None:
        indicator = slis.get(str(spec["indicatorRef"]))
        if indicator is None:
            raise MappingError(f"spec.indicatorRef {spec['indicatorRef']!r}: no SLI document "
                               "of that name in the input")
    objectives = _list(spec.get("objectives"), "spec.objectives")
    if not objectives:
        raise MappingError("spec.objectives: none")
    if len(objectives) > 1:
        notes.append(f"{len(objectives)} objectives: only the first one is used (an SLO of "
                     "the exporter has one objective)")
    objective = _mapping(objectives[0], "spec.objectives[0]", optional=False)
    if objective.get("indicator") is not None or objective.get("indicatorRef") is not None:
        raise MappingError("spec.objectives[0]: composite SLOs (an indicator per objective) "
                           "do not map")
    if indicator is None:
        raise MappingError("spec.indicator: none")
    indicator = _mapping(indicator, "spec.indicator", optional=False)
    match = _match_indicator(_mapping(indicator.get("spec"), "spec.indicator.spec"),
                             objective, sources)
    notes.extend(match.notes)
    percent = _target_percent(objective)
    method = str(spec.get("budgetingMethod") or "Occurrences")
    if match.sli["kind"] == "replication_lag":
        _time_slices(method, objective, notes)
    else:
        if method != "Occurrences":
            notes.append(f"budgetingMethod {method}: the exporter counts occurrences (events)")
        notes.extend(f"objective {key} dropped" for key in ("timeSliceTarget", "timeSliceWindow")
                     if key in objective)
    if spec.get("alertPolicies"):
        notes.append("alertPolicies dropped: alerts are generated from the alerting: "
                     "section (docs/slos.md)")
    annotations = _mapping(metadata.get("annotations"), "metadata.annotations")
    name = _annotation(annotations, "slo") or str(metadata.get("name") or "")
    slo: dict[str, Any] = {"name": slo_name(name, notes)}
    if spec.get("description"):
        slo["description"] = str(spec["description"])
    slo["sli"] = match.sli
    slo["objective"] = percent
    period = _period(spec, notes)
    if period is not None and period != "30d":
        slo["period"] = period
    regions = match.regions
    region = _annotation(annotations, "region")
    if regions is None and region is not None:
        regions = (region,)
    if regions is not None:
        slo["regions"] = list(regions)
    labels = clean_labels(dict(_mapping(metadata.get("labels"), "metadata.labels")), notes)
    if labels:
        slo["labels"] = labels
    return slo, notes


def _named(docs: Sequence[tuple[str, Mapping[str, Any]]],
           kind: str) -> dict[str, Mapping[str, Any]]:
    out: dict[str, Mapping[str, Any]] = {}
    for _, document in docs:
        metadata = document.get("metadata")
        if document.get("kind") == kind and isinstance(metadata, Mapping):
            out[str(metadata.get("name"))] = document
    return out


def import_openslo(documents: Iterable[tuple[str, Mapping[str, Any]]],
                   result: ImportResult | None = None) -> ImportResult:
    """Map OpenSLO v1 documents onto ``slos:`` entries.

    Args:
        documents: ``(where, document)`` pairs; ``where`` names the document in notes
            (``file.yaml#2``). ``SLI`` documents are used by ``indicatorRef``,
            ``DataSource`` documents by ``metricSourceRef``; ``Service`` and alerting
            kinds carry nothing to map.
        result: add to this result (default: a new one).

    Returns:
        The SLOs that mapped, notes on what was dropped, and what could not be mapped
        (each naming the document and the field).
    """
    result = result or ImportResult()
    docs: Sequence[tuple[str, Mapping[str, Any]]] = list(documents)
    slis = _named(docs, "SLI")
    sources = _Sources(_named(docs, "DataSource"))
    for where, document in docs:
        if document.get("apiVersion") != API_VERSION:
            result.skipped.append(f"{where}: apiVersion {document.get('apiVersion')!r} is not "
                                  f"{API_VERSION}")
            continue
        kind = document.get("kind")
        if kind == "SLO":
            metadata = document.get("metadata")
            name = metadata.get("name") if isinstance(metadata, Mapping) else None
            label = f"{where} (SLO {name!r})" if name else where
            try:
                slo, notes = _slo(document, slis, sources)
            except MappingError as exc:
                result.skipped.append(f"{label}: {exc}")
                continue
            result.add(label, slo, notes)
        elif kind == "AlertPolicy":
            result.notes.append(f"{where}: AlertPolicy not mapped: alerts are generated from "
                                "the alerting: section")
    return result
