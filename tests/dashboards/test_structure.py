"""Structural checks of the generated dashboards, and that the checks catch breakage."""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from grafana_foundation_sdk.models import dashboard as models
from prometheus_client import generate_latest

from registry_slo.config import Settings, load_config
from registry_slo.generate import dashboards
from registry_slo.generate import render as render_rules
from registry_slo.generate.dashboards import (
    DASHBOARDS,
    SCHEMA_VERSION,
    iter_panels,
    iter_targets,
    lint,
    lint_set,
)
from registry_slo.telemetry.metrics import ExporterMetrics
from registry_slo.telemetry.otel import SpanAccounting

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "regions.yaml"
COMMITTED = REPO / "dashboards"

Doc = dict[str, Any]


@pytest.fixture(scope="module")
def example() -> Settings:
    return load_config(EXAMPLE)


@pytest.fixture(scope="module")
def docs(example: Settings) -> dict[str, Doc]:
    return {name: json.loads(text) for name, text in dashboards.render(example).items()
            if name.endswith(".json")}


def test_three_dashboards_built_with_the_sdk(example: Settings) -> None:
    built = dashboards.build(example)
    assert sorted(built) == sorted(f"{ref.uid}.json" for ref in DASHBOARDS)
    assert all(isinstance(board, models.Dashboard) for board in built.values())
    assert [ref.title for ref in DASHBOARDS] == [
        "Registry SLOs: executive", "Registry SLOs: on-call", "Registry SLOs: debug"]


def test_current_schema_version(docs: dict[str, Doc]) -> None:
    # Grafana 11.6 / 12 write schemaVersion 41: pinned here so an SDK downgrade shows.
    assert SCHEMA_VERSION == 41
    assert {doc["schemaVersion"] for doc in docs.values()} == {41}


def test_the_generated_dashboards_pass_every_check(docs: dict[str, Doc]) -> None:
    assert lint_set(docs) == []


def test_panel_ids_unique_and_every_panel_bound_described_and_with_a_unit(
    docs: dict[str, Doc],
) -> None:
    datasource = {"type": "prometheus", "uid": "${datasource}"}
    for name, doc in docs.items():
        ids = [p["id"] for p in iter_panels(doc)]
        assert len(ids) == len(set(ids)) and all(i > 0 for i in ids), name
        panels = [p for p in iter_panels(doc) if p["type"] != "row"]
        assert len(panels) >= 12, name
        for panel in panels:
            assert panel["datasource"] == datasource, (name, panel["title"])
            assert len(panel["description"]) > 40, (name, panel["title"])
            assert panel["fieldConfig"]["defaults"]["unit"], (name, panel["title"])
            assert panel["targets"], (name, panel["title"])
            for target in panel["targets"]:
                assert target["datasource"] == datasource
                assert target["expr"].strip()


def test_variables(docs: dict[str, Doc]) -> None:
    for doc in docs.values():
        variables = {v["name"]: v for v in doc["templating"]["list"]}
        assert list(variables) == ["datasource", "region", "slo"]
        assert variables["datasource"]["type"] == "datasource"
        assert variables["datasource"]["query"] == "prometheus"
        for name in ("region", "slo"):
            assert variables[name]["multi"] and variables[name]["includeAll"]
            assert variables[name]["allValue"] == ".*"
            assert variables[name]["datasource"]["uid"] == "${datasource}"
        used = {v for _, t in iter_targets(doc) for v in re.findall(r"\$(\w+)", t["expr"])}
        assert used - {"__rate_interval", "__range"} <= {"region", "slo"}


def test_links_resolve_to_the_other_dashboards(docs: dict[str, Doc]) -> None:
    uids = {doc["uid"] for doc in docs.values()}
    assert uids == {ref.uid for ref in DASHBOARDS}
    for doc in docs.values():
        others = uids - {doc["uid"]}
        linked = {link["url"].removeprefix("/d/") for link in doc["links"]}
        assert linked == others, doc["uid"]
        assert all(link["includeVars"] and link["keepTime"] for link in doc["links"])
        for panel in iter_panels(doc):
            for link in panel.get("links", []):
                assert link["url"].removeprefix("/d/") in others, panel["title"]


def _exported_series() -> set[str]:
    """Every series name the exporter can serve (from the TYPE lines of its exposition)."""
    metrics = ExporterMetrics()
    metrics.registry.register(SpanAccounting(16))
    names = set()
    text = generate_latest(metrics.registry).decode()
    for family, kind in re.findall(r"^# TYPE (\S+) (\S+)$", text, re.MULTILINE):
        if kind == "histogram":
            names |= {f"{family}_bucket", f"{family}_sum", f"{family}_count"}
        elif kind == "counter":
            names.add(family if family.endswith("_total") else f"{family}_total")
        else:
            names.add(family)
    return names


def test_every_series_a_panel_reads_exists(example: Settings, docs: dict[str, Doc]) -> None:
    """No panel over a metric the exporter does not serve or the rules do not record."""
    recorded, alerts = set(), set()
    for path, text in render_rules(example).items():
        if path.startswith("rules/"):
            for group in yaml.safe_load(text)["groups"]:
                recorded |= {r["record"] for r in group["rules"] if "record" in r}
                alerts |= {r["alert"] for r in group["rules"] if "alert" in r}
    served = _exported_series()
    for name, doc in docs.items():
        for panel, target in iter_targets(doc):
            expr = target["expr"]
            for series in re.findall(r"\b(registry_slo_\w+)", expr):
                assert series in served, (name, panel["title"], series)
            for series in re.findall(r"\b(slo:[\w:]+)", expr):
                assert series in recorded, (name, panel["title"], series)
            for alert in re.findall(r'alertname=~?"([^"]+)"', expr):
                assert set(alert.split("|")) <= alerts, (name, panel["title"], alert)


def test_latency_panels_ask_for_exemplars(docs: dict[str, Doc]) -> None:
    latency = [(panel["title"], target) for doc in docs.values()
               for panel, target in iter_targets(doc)
               if "registry_slo_probe_duration_seconds_bucket" in target["expr"]]
    assert len(latency) >= 7
    assert all(target.get("exemplar") is True for _, target in latency)


def _panel(doc: Doc, title: str) -> Doc:
    return next(p for p in iter_panels(doc) if p["title"] == title)


def _steps(panel: Doc) -> list[tuple[float | None, str]]:
    steps = panel["fieldConfig"]["defaults"]["thresholds"]["steps"]
    return [(s["value"], s["color"]) for s in steps]


def test_thresholds_come_from_the_configuration(tmp_path: Path) -> None:
    data = yaml.safe_load(EXAMPLE.read_text())
    data["slos"][0]["objective"] = 99.5  # pull-availability
    data["slos"][2]["sli"]["threshold"] = "5s"  # pull-latency
    data["alerting"]["replication_lag_threshold"] = "10m"
    settings = Settings.model_validate(data)
    built = {name: json.loads(text) for name, text in dashboards.render(settings).items()
             if name.endswith(".json")}
    executive = built["registry-slo-executive.json"]
    oncall = built["registry-slo-oncall.json"]
    assert _steps(_panel(executive, "pull-availability: SLI over 30d")) == \
        [(None, "red"), (0.995, "green")]
    assert _steps(_panel(executive, "push-availability: SLI over 30d")) == \
        [(None, "red"), (0.995, "green")]
    assert _steps(_panel(executive, "pull-latency: SLI over 28d")) == \
        [(None, "red"), (0.99, "green")]
    # burn-rate lines: the 28d period's page factors
    burn = _steps(_panel(executive, "pull-latency: error budget burn rate"))
    assert burn == [(None, "green"), (1.0, "yellow"), (5.6, "orange"),
                    (pytest.approx(13.44), "red")]
    assert _steps(_panel(oncall, "Pull latency p95 and p99 by region")) == \
        [(None, "green"), (5.0, "red")]
    assert _steps(_panel(oncall, "Replication lag")) == \
        [(None, "green"), (30.0, "yellow"), (600.0, "red")]
    assert _steps(_panel(oncall, "Auth probe failure ratio")) == \
        [(None, "green"), (pytest.approx(0.001), "red")]
    # probes not running: 3 times the longest interval (30s in the example)
    assert _steps(_panel(oncall, "Seconds since each probe last ran"))[-1] == (90.0, "red")


def test_one_row_per_configured_slo() -> None:
    settings = Settings.model_validate({
        "regions": [{"name": "r1", "url": "http://127.0.0.1:5001"}],
        "slos": [{"name": "only-pulls", "sli": {"kind": "probe_success", "probe": "pull"},
                  "objective": 99, "description": "Pulls work"}],
    })
    executive = dashboards.build(settings)["registry-slo-executive.json"]
    doc = json.loads(json.dumps(executive, default=lambda o: o.to_json()))
    rows = [p["title"] for p in iter_panels(doc) if p["type"] == "row"]
    assert rows == ["Overview", "What users see (registry logs)",
                    "Storage (M7) and supply chain (M10)", "only-pulls: Pulls work"]
    exprs = [t["expr"] for _, t in iter_targets(doc)]
    assert '1 - slo:sli_error:ratio_rate30d{sloth_slo="only-pulls",region=~"$region"}' in exprs
    # without a push SLO, the push success panel has no objective line
    push = _panel(doc, "Client push success rate by region")
    assert "thresholds" not in push["fieldConfig"]["defaults"]


Mutation = Callable[[Doc], None]


def _first_data_panel(doc: Doc) -> Doc:
    return next(p for p in iter_panels(doc) if p["type"] != "row")


def _latency_target(doc: Doc) -> Doc:
    return next(t for _, t in iter_targets(doc)
                if "registry_slo_probe_duration_seconds_bucket" in t["expr"])


MUTATIONS: dict[str, tuple[Mutation, str]] = {
    "old schema": (lambda d: d.update(schemaVersion=36), "schemaVersion 36"),
    "duplicate id": (lambda d: d["panels"][2].update(id=d["panels"][1]["id"]), "duplicate id"),
    "no description": (lambda d: _first_data_panel(d).update(description=""),
                       "no description"),
    "fixed datasource": (lambda d: _first_data_panel(d).update(
        datasource={"type": "prometheus", "uid": "prom-1"}), "not bound to the datasource"),
    "query datasource": (lambda d: _first_data_panel(d)["targets"][0].update(datasource={}),
                         "not bound to the datasource variable"),
    "empty query": (lambda d: _first_data_panel(d)["targets"][0].update(expr=" "),
                    "empty query"),
    "unknown variable": (lambda d: _first_data_panel(d)["targets"][0].update(
        expr='up{cluster="$cluster"}'), "undefined variable $cluster"),
    "no unit": (lambda d: _first_data_panel(d)["fieldConfig"]["defaults"].pop("unit"),
                "no unit"),
    "no exemplars": (lambda d: _latency_target(d).pop("exemplar"), "without exemplars"),
    "dangling link": (lambda d: d["links"][0].update(url="/d/nope"),
                      "does not open another known dashboard"),
    "self link": (lambda d: d["links"][0].update(url=f"/d/{d['uid']}"),
                  "does not open another known dashboard"),
    "no datasource variable": (lambda d: d["templating"]["list"].pop(0),
                               "no datasource variable"),
}


@pytest.mark.parametrize("mutation", sorted(MUTATIONS))
def test_the_checks_catch_broken_dashboards(docs: dict[str, Doc], mutation: str) -> None:
    change, message = MUTATIONS[mutation]
    broken = copy.deepcopy(docs)
    change(broken["registry-slo-oncall.json"])
    problems = lint_set(broken)
    assert any(message in p and p.startswith("registry-slo-oncall.json") for p in problems), \
        problems
    assert lint(docs["registry-slo-oncall.json"],
                {doc["uid"]: doc["title"] for doc in docs.values()}) == []


def test_the_committed_dashboards_are_the_generated_ones(example: Settings) -> None:
    assert dashboards.check(example, COMMITTED) == []
    committed = {p.name: json.loads(p.read_text()) for p in COMMITTED.glob("*.json")}
    assert lint_set(committed) == []
