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
period, and the annotations ``registry-slo/slo`` and ``registry-slo/region`` so that
importing the export gives back the configuration.

Import maps an ``SLO`` document onto the exporter's SLI kinds when its queries read the
exporter's series (see :mod:`registry_slo.interop._queries`); indicators may be inline
or ``indicatorRef`` to an ``SLI`` document of the same input. The documents of one SLO
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
ANNOTATION_SLO = "registry-slo/slo"
ANNOTATION_REGION = "registry-slo/region"
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


def _source_query(metric: Any, what: str) -> str:
    source = (metric or {}).get("metricSource") if isinstance(metric, Mapping) else None
    if not isinstance(source, Mapping):
        raise MappingError(f"{what}: no metricSource")
    kind = str(source.get("type") or "")
    if kind.lower() != "prometheus":
        raise MappingError(f"{what}: metric source type {kind or '(none)'!r} is not Prometheus")
    spec = source.get("spec")
    query = spec.get("query") if isinstance(spec, Mapping) else None
    if not isinstance(query, str) or not query.strip():
        raise MappingError(f"{what}: no Prometheus query")
    return query


def _match_indicator(spec: Mapping[str, Any], objective: Mapping[str, Any]) -> SLIMatch:
    ratio = spec.get("ratioMetric")
    if isinstance(ratio, Mapping):
        if ratio.get("raw") is not None:
            # rawType (success or failure ratio) does not change which SLI it is.
            return match_raw(_source_query(ratio["raw"], "ratioMetric.raw"))
        total = _source_query(ratio.get("total"), "ratioMetric.total")
        if ratio.get("bad") is not None:
            return match_events(_source_query(ratio["bad"], "ratioMetric.bad"), total)
        if ratio.get("good") is not None:
            return match_events(_source_query(ratio["good"], "ratioMetric.good"), total,
                                good=True)
        raise MappingError("ratioMetric has neither good nor bad")
    threshold = spec.get("thresholdMetric")
    if isinstance(threshold, Mapping):
        value = objective.get("value")
        return match_threshold(
            _source_query(threshold, "thresholdMetric"), objective.get("op"),
            None if value is None else float(value),
        )
    raise MappingError("the indicator has neither ratioMetric nor thresholdMetric")


def _period(spec: Mapping[str, Any], notes: list[str]) -> str | None:
    windows = spec.get("timeWindow") or []
    if not windows:
        return None
    if len(windows) > 1:
        notes.append(f"{len(windows)} time windows: only the first one is used")
    window = windows[0] if isinstance(windows[0], Mapping) else {}
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


def _slo(document: Mapping[str, Any], slis: Mapping[str, Mapping[str, Any]],
         where: str, result: ImportResult) -> None:
    metadata = document.get("metadata") or {}
    spec = document.get("spec") or {}
    notes: list[str] = []
    indicator = spec.get("indicator")
    if indicator is None and spec.get("indicatorRef") is not None:
        indicator = slis.get(str(spec["indicatorRef"]))
        if indicator is None:
            result.skipped.append(
                f"{where}: indicatorRef {spec['indicatorRef']!r}: no SLI document of that "
                "name in the input")
            return
    objectives = spec.get("objectives") or []
    if not objectives or not isinstance(objectives[0], Mapping):
        result.skipped.append(f"{where}: no objectives")
        return
    if len(objectives) > 1:
        notes.append(f"{len(objectives)} objectives: only the first one is used (an SLO of "
                     "the exporter has one objective)")
    objective = objectives[0]
    if objective.get("indicator") is not None or objective.get("indicatorRef") is not None:
        result.skipped.append(f"{where}: composite SLOs (an indicator per objective) do not "
                              "map")
        return
    if not isinstance(indicator, Mapping):
        result.skipped.append(f"{where}: no indicator")
        return
    try:
        match = _match_indicator(indicator.get("spec") or {}, objective)
    except MappingError as exc:
        result.skipped.append(f"{where}: {exc}")
        return
    notes.extend(match.notes)
    if "targetPercent" in objective:
        percent = float(objective["targetPercent"])
    elif "target" in objective:
        percent = percent_from_ratio(float(objective["target"]))
    else:
        result.skipped.append(f"{where}: the objective has no target")
        return
    method = str(spec.get("budgetingMethod") or "Occurrences")
    if method != "Occurrences" and match.sli["kind"] != "replication_lag":
        notes.append(f"budgetingMethod {method}: the exporter counts occurrences (events)")
    for key in ("timeSliceTarget", "timeSliceWindow"):
        if key in objective and match.sli["kind"] != "replication_lag":
            notes.append(f"objective {key} dropped")
    if spec.get("alertPolicies"):
        notes.append("alertPolicies dropped: alerts are generated from the alerting: "
                     "section (docs/slos.md)")
    annotations = metadata.get("annotations") or {}
    name = str(annotations.get(ANNOTATION_SLO) or metadata.get("name") or "")
    slo: dict[str, Any] = {"name": slo_name(name, notes)}
    if spec.get("description"):
        slo["description"] = str(spec["description"])
    slo["sli"] = match.sli
    slo["objective"] = percent
    period = _period(spec, notes)
    if period is not None and period != "30d":
        slo["period"] = period
    regions = match.regions
    if regions is None and annotations.get(ANNOTATION_REGION):
        regions = (str(annotations[ANNOTATION_REGION]),)
    if regions is not None:
        slo["regions"] = list(regions)
    labels = clean_labels(dict(metadata.get("labels") or {}), notes)
    if labels:
        slo["labels"] = labels
    result.add(where, slo, notes)


def import_openslo(documents: Iterable[tuple[str, Mapping[str, Any]]],
                   result: ImportResult | None = None) -> ImportResult:
    """Map OpenSLO v1 documents onto ``slos:`` entries.

    Args:
        documents: ``(where, document)`` pairs; ``where`` names the document in notes
            (``file.yaml#2``). ``SLI`` documents are used by ``indicatorRef``;
            ``Service``, ``DataSource`` and alerting kinds carry nothing to map.
        result: add to this result (default: a new one).

    Returns:
        The SLOs that mapped, notes on what was dropped, and what could not be mapped.
    """
    result = result or ImportResult()
    docs: Sequence[tuple[str, Mapping[str, Any]]] = list(documents)
    slis = {
        str((d.get("metadata") or {}).get("name")): d
        for _, d in docs if d.get("kind") == "SLI"
    }
    for where, document in docs:
        if document.get("apiVersion") != API_VERSION:
            result.skipped.append(f"{where}: apiVersion {document.get('apiVersion')!r} is not "
                                  f"{API_VERSION}")
            continue
        kind = document.get("kind")
        if kind == "SLO":
            _slo(document, slis, where, result)
        elif kind == "AlertPolicy":
            result.notes.append(f"{where}: AlertPolicy not mapped: alerts are generated from "
                                "the alerting: section")
    return result
