"""Structural checks of dashboard JSON: what must hold for every generated dashboard.

:func:`lint` works on plain JSON (as written to ``dashboards/``), so it also checks a
dashboard edited by hand or exported from Grafana.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

from grafana_foundation_sdk.models import dashboard as models

__all__ = ["SCHEMA_VERSION", "iter_panels", "iter_targets", "lint", "lint_set"]

SCHEMA_VERSION: int = models.Dashboard().schema_version
"""The dashboard JSON schema version of the grafana-foundation-sdk in use (41: Grafana 11.6
and 12)."""

_BUILTIN_VARIABLES = frozenset({
    "__rate_interval", "__interval", "__interval_ms", "__range", "__range_s", "__range_ms",
})
_VARIABLE = re.compile(r"\$\{?(\w+)")
_DASHBOARD_URL = re.compile(r"^/d/([A-Za-z0-9_-]+)(?:/[^?]*)?(?:\?.*)?$")
_LATENCY_SERIES = "registry_slo_probe_duration_seconds_bucket"
_DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}


def iter_panels(doc: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    """Every panel of a dashboard, rows included, and panels inside collapsed rows."""
    for panel in doc.get("panels", []):
        yield panel
        yield from panel.get("panels", [])


def iter_targets(doc: Mapping[str, Any]) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    """``(panel, target)`` for every query of every panel."""
    for panel in iter_panels(doc):
        for target in panel.get("targets", []):
            yield panel, target


def _links(doc: Mapping[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for link in doc.get("links", []):
        yield "dashboard", link
    for panel in iter_panels(doc):
        for link in panel.get("links", []):
            yield f"panel {panel.get('id')} ({panel.get('title')!r})", link


def lint(doc: Mapping[str, Any], link_targets: Mapping[str, str] | None = None) -> list[str]:
    """Check one dashboard.

    - ``schemaVersion`` is :data:`SCHEMA_VERSION`; ``uid`` and ``title`` are set;
    - a ``datasource`` variable of type prometheus, and every ``$variable`` a query
      uses is defined (or one of Grafana's ``$__`` variables);
    - panel ids are unique and positive;
    - every panel but rows is bound to ``${datasource}``, has a description, a unit and
      at least one query; every query is bound to ``${datasource}`` and not empty;
    - queries over the probe duration histogram ask for exemplars (trace links);
    - every link points at ``/d/<uid>`` of another dashboard in ``link_targets``.

    Args:
        doc: the dashboard JSON.
        link_targets: uid → title of the dashboards links may point at (``None``: do
            not check links).

    Returns:
        One line per problem; empty when the dashboard is sound.
    """
    problems: list[str] = []
    uid = doc.get("uid")
    if doc.get("schemaVersion") != SCHEMA_VERSION:
        problems.append(f"schemaVersion {doc.get('schemaVersion')!r}, expected {SCHEMA_VERSION}")
    if not uid or not doc.get("title"):
        problems.append("uid and title must be set")
    variables = {v.get("name"): v for v in doc.get("templating", {}).get("list", [])}
    datasource = variables.get("datasource")
    if datasource is None or datasource.get("type") != "datasource" \
            or datasource.get("query") != "prometheus":
        problems.append("no datasource variable of type prometheus")
    seen: set[int] = set()
    for panel in iter_panels(doc):
        where = f"panel {panel.get('id')} ({panel.get('title')!r})"
        panel_id = panel.get("id")
        if not isinstance(panel_id, int) or panel_id <= 0:
            problems.append(f"{where}: id must be a positive integer")
        elif panel_id in seen:
            problems.append(f"{where}: duplicate id")
        else:
            seen.add(panel_id)
        if panel.get("type") == "row":
            continue
        problems += _lint_panel(where, panel, variables)
    if link_targets is not None:
        for where, link in _links(doc):
            match = _DASHBOARD_URL.match(str(link.get("url", "")))
            if match is None or match.group(1) not in link_targets or match.group(1) == uid:
                problems.append(f"{where}: link {link.get('title')!r} to {link.get('url')!r} "
                                "does not open another known dashboard")
    return problems


def _lint_panel(where: str, panel: Mapping[str, Any],
                variables: Mapping[str, Any]) -> list[str]:
    problems = []
    if panel.get("datasource") != _DATASOURCE:
        problems.append(f"{where}: not bound to the datasource variable")
    if not str(panel.get("description", "")).strip():
        problems.append(f"{where}: no description")
    if not panel.get("fieldConfig", {}).get("defaults", {}).get("unit"):
        problems.append(f"{where}: no unit")
    targets = panel.get("targets", [])
    if not targets:
        problems.append(f"{where}: no query")
    ref_ids = [t.get("refId") for t in targets]
    if len(set(ref_ids)) != len(ref_ids) or not all(ref_ids):
        problems.append(f"{where}: query refIds must be set and unique")
    for target in targets:
        expr = str(target.get("expr", ""))
        if not expr.strip():
            problems.append(f"{where}: empty query {target.get('refId')}")
        if target.get("datasource") != _DATASOURCE:
            problems.append(f"{where}: query {target.get('refId')} not bound to the "
                            "datasource variable")
        for name in _VARIABLE.findall(expr):
            if name not in variables and name not in _BUILTIN_VARIABLES:
                problems.append(f"{where}: query {target.get('refId')} uses undefined "
                                f"variable ${name}")
        if _LATENCY_SERIES in expr and not target.get("exemplar"):
            problems.append(f"{where}: latency query {target.get('refId')} without exemplars")
    return problems


def lint_set(docs: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """Check dashboards that link to each other: each with :func:`lint`, uids unique,
    every link resolving to another dashboard of the set.

    Args:
        docs: file name → dashboard JSON.

    Returns:
        Problems prefixed with the file name.
    """
    uids = {str(doc.get("uid")): str(doc.get("title")) for doc in docs.values()}
    problems = []
    if len(uids) != len(docs):
        problems.append("dashboard uids are not unique")
    for name, doc in docs.items():
        problems += [f"{name}: {p}" for p in lint(doc, uids)]
    return problems
