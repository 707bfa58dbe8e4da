"""Sloth ``prometheus/v1`` specs: import the SLOs whose queries read the exporter's series.

A Sloth spec is one service with SLOs, each with an SLI given as ``events``
(``error_query`` over ``total_query``), ``raw`` (``error_ratio_query``) or a ``plugin``.
Events and raw SLIs map when their queries read the exporter's series (see
:mod:`registry_slo.interop._queries`); plugins never do. Sloth specs have no period
(it is a flag of the ``sloth`` command): the exporter's default, 30d, applies. The
``alerting`` section does not map per SLO: the exporter's alerts are configured once in
``alerting:``; it is reported when present.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from registry_slo.interop._queries import MappingError, SLIMatch, match_events, match_raw
from registry_slo.interop._result import ImportResult, clean_labels, slo_name

__all__ = ["SLOTH_VERSION", "import_sloth"]

SLOTH_VERSION = "prometheus/v1"


def _match(sli: Mapping[str, Any]) -> SLIMatch:
    events = sli.get("events")
    if isinstance(events, Mapping):
        error, total = events.get("error_query"), events.get("total_query")
        if not isinstance(error, str) or not isinstance(total, str):
            raise MappingError("sli.events needs error_query and total_query")
        return match_events(error, total)
    raw = sli.get("raw")
    if isinstance(raw, Mapping):
        query = raw.get("error_ratio_query")
        if not isinstance(query, str):
            raise MappingError("sli.raw needs error_ratio_query")
        return match_raw(query)
    if sli.get("plugin") is not None:
        plugin = sli["plugin"].get("id") if isinstance(sli["plugin"], Mapping) else None
        raise MappingError(f"SLI plugin {plugin!r}: plugins generate their own queries")
    raise MappingError("sli has none of events, raw or plugin")


def _alerting_note(alerting: Any) -> str | None:
    if not isinstance(alerting, Mapping):
        return None
    parts = [key for key in ("name", "labels", "annotations", "page_alert", "ticket_alert")
             if alerting.get(key)]
    if not parts:
        return None
    return (f"alerting ({', '.join(parts)}) dropped: the exporter's alerts are configured "
            "once, in the alerting: section (receivers, runbook_url)")


def import_sloth(documents: Iterable[tuple[str, Mapping[str, Any]]],
                 result: ImportResult | None = None) -> ImportResult:
    """Map Sloth ``prometheus/v1`` specs onto ``slos:`` entries.

    Args:
        documents: ``(where, spec)`` pairs; ``where`` names the document in notes.
        result: add to this result (default: a new one).

    Returns:
        The SLOs that mapped, notes on what was dropped, and what could not be mapped.
    """
    result = result or ImportResult()
    for where, spec in documents:
        if spec.get("version") != SLOTH_VERSION:
            result.skipped.append(f"{where}: version {spec.get('version')!r} is not "
                                  f"{SLOTH_VERSION}")
            continue
        service_labels = dict(spec.get("labels") or {})
        for index, slo in enumerate(spec.get("slos") or []):
            if not isinstance(slo, Mapping):
                result.skipped.append(f"{where}: slos[{index}] is not a mapping")
                continue
            here = f"{where}: slos[{index}] {slo.get('name')!r}"
            try:
                match = _match(slo.get("sli") or {})
            except MappingError as exc:
                result.skipped.append(f"{here}: {exc}")
                continue
            notes = list(match.notes)
            entry: dict[str, Any] = {"name": slo_name(str(slo.get("name") or ""), notes)}
            if slo.get("description"):
                entry["description"] = str(slo["description"])
            entry["sli"] = match.sli
            try:
                entry["objective"] = float(slo.get("objective"))  # type: ignore[arg-type]
            except (TypeError, ValueError):
                result.skipped.append(f"{here}: objective {slo.get('objective')!r} is not a "
                                      "number")
                continue
            if match.regions is not None:
                entry["regions"] = list(match.regions)
            labels = clean_labels({**service_labels, **dict(slo.get("labels") or {})}, notes)
            if labels:
                entry["labels"] = labels
            note = _alerting_note(slo.get("alerting"))
            if note:
                notes.append(note)
            result.add(here, entry, notes)
    return result
