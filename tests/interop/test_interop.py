"""OpenSLO v1 export/import and Sloth prometheus/v1 import (registry_slo.interop)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
import yaml

from registry_slo.config import Settings, SLOSpec, TrafficLatencySLI, TrafficSuccessSLI, load_config
from registry_slo.generate.rules import error_ratio_expr
from registry_slo.interop import (
    dump_documents,
    export_openslo,
    import_documents,
    load_documents,
    slos_yaml,
)
from registry_slo.interop._queries import (
    MappingError,
    match_events,
    match_raw,
    selectors,
)
from registry_slo.oci import Reason

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "regions.yaml"


def docs(text: str, source: str = "input.yaml") -> list[tuple[str, Any]]:
    return load_documents(textwrap.dedent(text), source)


# -- export ------------------------------------------------------------------------------


def test_export_has_a_service_per_region_and_an_slo_per_slo_and_region() -> None:
    settings = load_config(EXAMPLE)
    documents = export_openslo(settings)
    assert all(d["apiVersion"] == "openslo/v1" for d in documents)
    services = [d for d in documents if d["kind"] == "Service"]
    slos = [d for d in documents if d["kind"] == "SLO"]
    assert {s["metadata"]["name"] for s in services} == {"us-east", "eu-west",
                                                          "ap-south-cache"}
    assert len(slos) == len(settings.slo_targets())
    by_name = {d["metadata"]["name"]: d for d in slos}
    pull = by_name["pull-availability-us-east"]
    assert pull["spec"]["service"] == "us-east"
    assert pull["spec"]["budgetingMethod"] == "Occurrences"
    assert pull["spec"]["timeWindow"] == [{"duration": "30d", "isRolling": True}]
    assert pull["spec"]["objectives"][0]["target"] == 0.999
    ratio = pull["spec"]["indicator"]["spec"]["ratioMetric"]
    assert ratio["counter"] is True
    assert ratio["bad"]["metricSource"] == {"type": "Prometheus", "spec": {
        "query": 'sum(registry_slo_probe_failures_total{region="us-east",probe="pull"})'}}
    latency = by_name["pull-latency-us-east"]["spec"]
    assert latency["timeWindow"][0]["duration"] == "28d"
    assert latency["indicator"]["spec"]["ratioMetric"]["good"]["metricSource"]["spec"][
        "query"] == ('sum(registry_slo_probe_duration_seconds_bucket{region="us-east",'
                     'probe="pull",le="2.0"})')
    lag = by_name["replication-freshness-eu-west"]["spec"]
    assert lag["indicator"]["spec"]["thresholdMetric"]["metricSource"]["spec"]["query"] == (
        'max(registry_slo_replication_lag_seconds{region="eu-west"})')
    assert lag["objectives"][0] == {"displayName": "99.5%", "target": 0.995, "op": "lte",
                                    "value": 30.0}
    for document in slos:  # DNS-label names, as OpenSLO asks
        name = document["metadata"]["name"]
        assert len(name) <= 63 and name.replace("-", "").isalnum() and name.islower()


def expected_slos(settings: Settings) -> dict[str, SLOSpec]:
    """The configuration's SLOs as an import gives them back: with their regions, and
    for traffic SLOs with the ingest sources their queries select (each region's, as a
    union in configuration order), since the exported queries name the sources."""
    topology = settings.slo_topology()
    expected = {}
    for slo in settings.slos:
        regions = topology.regions(slo)
        update: dict[str, Any] = {"regions": regions}
        if isinstance(slo.sli, TrafficSuccessSLI | TrafficLatencySLI):
            sources = dict.fromkeys(s for r in regions for s in topology.sources(slo, r))
            update["sli"] = slo.sli.model_copy(update={"sources": tuple(sources)})
        expected[slo.name] = slo.model_copy(update=update)
    return expected


def test_export_then_import_gives_back_the_configuration(tmp_path: Path) -> None:
    settings = load_config(EXAMPLE)
    text = yaml.safe_dump_all(export_openslo(settings))
    result = import_documents(load_documents(text, "export.yaml"))
    assert result.complete, (result.notes, result.skipped)
    imported = {s["name"]: SLOSpec(**s) for s in result.slos}
    assert imported == expected_slos(settings)
    # The printed slos: section is accepted by the configuration it came from.
    config = yaml.safe_load(EXAMPLE.read_text())
    config["slos"] = yaml.safe_load(slos_yaml(result))["slos"]
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    assert load_config(path).slos == tuple(imported.values())


def queries(document: dict[str, Any]) -> dict[str, str]:
    ratio = document["spec"]["indicator"]["spec"]["ratioMetric"]
    return {key: ratio[key]["metricSource"]["spec"]["query"]
            for key in ("good", "bad", "total") if key in ratio}


def test_export_of_traffic_slis() -> None:
    settings = load_config(EXAMPLE)
    by_name = {d["metadata"]["name"]: d for d in export_openslo(settings) if d["kind"] == "SLO"}
    assert queries(by_name["pull-traffic-availability-eu-west"]) == {
        "bad": "sum(registry_slo_registry_request_failures_total{region=\"eu-west\","
               "source=\"eu-west-registry\",operation=~\"pull_manifest|pull_blob\","
               "reason=~\"server_error|rate_limited\"})",
        "total": "sum(registry_slo_registry_requests_total{region=\"eu-west\","
                 "source=\"eu-west-registry\",operation=~\"pull_manifest|pull_blob\"})",
    }
    assert queries(by_name["manifest-pull-latency-us-east"]) == {
        "good": "sum(registry_slo_registry_request_duration_seconds_bucket{"
                "region=\"us-east\",source=\"us-east-registry\",operation=\"pull_manifest\","
                "le=\"0.5\"})",
        "total": "sum(registry_slo_registry_request_duration_seconds_count{"
                 "region=\"us-east\",source=\"us-east-registry\",operation=\"pull_manifest\"})",
    }
    assert "manifest-pull-latency-ap-south-cache" not in by_name  # no source to count


TRAFFIC_CONFIG = """
regions:
  - {name: us-east, url: https://us-east.example.com}
  - {name: eu-west, url: https://eu-west.example.com}
ingest:
  logs:
    - {name: us-east-registry, region: us-east, format: distribution, paths: [/l/a.log]}
    - {name: us-east-edge, region: us-east, format: distribution, paths: [/l/b.log]}
    - {name: eu-west-registry, region: eu-west, format: distribution, paths: [/l/c.log]}
  notifications:
    endpoints: [{name: us-east-events, region: us-east, format: distribution}]
slos:
  - name: pushes
    sli:
      kind: traffic_success
      operations: [push_manifest]
      errors: [server_error]
      sources: [us-east-events, eu-west-registry, us-east-registry]
    objective: 99.5
"""


def test_export_of_traffic_slis_selects_the_sources_of_each_region(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(TRAFFIC_CONFIG)
    settings = load_config(path)
    documents = export_openslo(settings)
    by_name = {d["metadata"]["name"]: d for d in documents if d["kind"] == "SLO"}
    assert queries(by_name["pushes-us-east"]) == {
        "bad": "sum(registry_slo_registry_request_failures_total{region=\"us-east\","
               "source=~\"us-east-events|us-east-registry\",operation=\"push_manifest\","
               "reason=\"server_error\"})",
        "total": "sum(registry_slo_registry_requests_total{region=\"us-east\","
                 "source=~\"us-east-events|us-east-registry\",operation=\"push_manifest\"})",
    }
    assert 'source="eu-west-registry"' in queries(by_name["pushes-eu-west"])["total"]
    # Back: one SLO, its regions, and the union of their sources (region by region).
    result = import_documents(load_documents(dump_documents(documents), "export.yaml"))
    assert result.complete, (result.notes, result.skipped)
    assert result.slos == [{
        "name": "pushes",
        "sli": {"kind": "traffic_success", "operations": ["push_manifest"],
                "errors": ["server_error"],
                "sources": ["us-east-events", "us-east-registry", "eu-west-registry"]},
        "objective": 99.5,
        "regions": ["us-east", "eu-west"],
    }]
    assert {s["name"]: SLOSpec(**s) for s in result.slos} == expected_slos(settings)


# -- OpenSLO import ----------------------------------------------------------------------

FOREIGN_OPENSLO = """
- apiVersion: openslo/v1
  kind: SLO
  metadata:
    name: web-availability
    displayName: SLO for web availability
    labels:
      env: [prod]
      team: [team-a, team-b]
  spec:
    description: X% of search requests are successful
    service: web
    indicator:
      metadata:
        name: web-successful-requests-ratio
      spec:
        ratioMetric:
          counter: true
          good:
            metricSource:
              type: Prometheus
              spec:
                query: sum(http_requests{k8s_cluster="prod",component="web",code=~"2xx|4xx"})
          total:
            metricSource:
              type: Prometheus
              spec:
                query: sum(http_requests{k8s_cluster="prod",component="web"})
    timeWindow:
      - duration: 1w
        isRolling: false
        calendar:
          startTime: 2022-01-01 12:00:00
          timeZone: America/New_York
    budgetingMethod: Timeslices
    objectives:
      - displayName: Good
        op: gt
        target: 0.995
        timeSliceTarget: 0.95
        timeSliceWindow: 1m
- apiVersion: openslo/v1
  kind: SLO
  metadata:
    name: datadog-hits
  spec:
    service: web
    indicator:
      metadata: {name: hits}
      spec:
        ratioMetric:
          counter: true
          good:
            metricSource:
              metricSourceRef: datadog-datasource
              type: Datadog
              spec:
                query: sum:trace.http.request.hits.by_http_status{http.status_code:200}.as_count()
          total:
            metricSource:
              type: Datadog
              spec:
                query: sum:trace.http.request.hits.by_http_status{*}.as_count()
    timeWindow: [{duration: 1M, isRolling: true}]
    budgetingMethod: Occurrences
    objectives: [{target: 0.98}]
"""

OWN_OPENSLO = """
apiVersion: openslo/v1
kind: Service
metadata: {name: us-east}
spec: {description: the us-east registry}
---
apiVersion: openslo/v1
kind: SLO
metadata:
  name: Pull_Availability
  labels: {team: [registry], severity: [high]}
spec:
  description: Pulls succeed
  service: us-east
  indicator:
    metadata: {name: pulls}
    spec:
      ratioMetric:
        counter: true
        good:
          metricSource:
            type: Prometheus
            spec:
              query: >-
                sum(rate(registry_slo_probe_requests_total{
                job="registry-slo",region="us-east",probe="pull"}[5m]))
                - sum(rate(registry_slo_probe_failures_total{
                job="registry-slo",region="us-east",probe="pull"}[5m]))
        total:
          metricSource:
            type: prometheus
            spec:
              query: >-
                sum(rate(registry_slo_probe_requests_total{
                job="registry-slo",region="us-east",probe="pull"}[5m]))
  timeWindow: [{duration: 1M, isRolling: true}]
  budgetingMethod: Occurrences
  objectives:
    - {displayName: internal, targetPercent: 99.95}
    - {displayName: SLA, target: 0.999}
  alertPolicies: [page-on-fast-burn]
---
apiVersion: openslo/v1
kind: SLI
metadata: {name: mirror-lag}
spec:
  thresholdMetric:
    metricSource:
      type: Prometheus
      spec:
        query: max(registry_slo_replication_lag_seconds{region=~"eu-west|ap-south"})
---
apiVersion: openslo/v1
kind: SLO
metadata: {name: freshness}
spec:
  service: mirrors
  indicatorRef: mirror-lag
  timeWindow: [{duration: 4w, isRolling: true}]
  budgetingMethod: Timeslices
  objectives:
    - {op: lte, value: 45, target: 0.99, timeSliceTarget: 1, timeSliceWindow: 1m}
---
apiVersion: openslo/v1
kind: SLO
metadata: {name: timeouts-only}
spec:
  service: us-east
  indicator:
    spec:
      ratioMetric:
        counter: true
        bad:
          metricSource:
            type: Prometheus
            spec:
              query: sum(registry_slo_probe_failures_total{probe="pull",reason="timeout"})
        total:
          metricSource:
            type: Prometheus
            spec: {query: 'sum(registry_slo_probe_requests_total{probe="pull"})'}
  timeWindow: [{duration: 30d, isRolling: true}]
  budgetingMethod: Occurrences
  objectives: [{target: 0.999}]
---
apiVersion: openslo/v1
kind: SLO
metadata: {name: dangling}
spec:
  service: x
  indicatorRef: no-such-sli
  timeWindow: [{duration: 30d, isRolling: true}]
  budgetingMethod: Occurrences
  objectives: [{target: 0.9}]
---
apiVersion: openslo/v1
kind: AlertPolicy
metadata: {name: page-on-fast-burn}
spec: {conditions: []}
---
apiVersion: openslo/v1alpha
kind: SLO
metadata: {name: old}
spec: {}
"""


def test_openslo_documents_that_read_other_metrics_are_not_mapped() -> None:
    result = import_documents(docs(FOREIGN_OPENSLO))
    assert result.slos == []
    assert len(result.skipped) == 2
    assert "input.yaml#1" in result.skipped[0] and "http_requests" in result.skipped[0]
    assert "not the exporter's series" in result.skipped[0]
    assert "Datadog" in result.skipped[1] and "not Prometheus" in result.skipped[1]
    assert not result.complete


def test_openslo_documents_on_the_exporters_series_map() -> None:
    result = import_documents(docs(OWN_OPENSLO))
    slos = {s["name"]: s for s in result.slos}
    assert slos["pull-availability"] == {
        "name": "pull-availability",
        "description": "Pulls succeed",
        "sli": {"kind": "probe_success", "probe": "pull"},
        "objective": 99.95,  # the first objective
        "regions": ["us-east"],
        "labels": {"team": "registry"},
    }
    assert slos["freshness"] == {
        "name": "freshness",
        "sli": {"kind": "replication_lag", "threshold": 45.0},
        "objective": 99.0,
        "period": "28d",
        "regions": ["eu-west", "ap-south"],
    }
    notes = "\n".join(result.notes)
    assert "renamed to 'pull-availability'" in notes
    assert "2 objectives: only the first one is used" in notes
    assert "dropped the matcher job='registry-slo'" in notes
    assert "label severity: reserved" in notes
    assert "alertPolicies dropped" in notes
    assert "AlertPolicy not mapped" in notes
    skipped = "\n".join(result.skipped)
    assert "reason='timeout'" in skipped and "subset" in skipped
    assert "indicatorRef 'no-such-sli'" in skipped
    assert "'openslo/v1alpha' is not openslo/v1" in skipped
    # What is printed: valid YAML whose slos: section the configuration accepts.
    text = slos_yaml(result)
    assert text.startswith("# Imported by registry-slo openslo import.\n# Not mapped:\n")
    loaded = yaml.safe_load(text)
    for slo in loaded["slos"]:
        SLOSpec(**slo)


TRAFFIC_OPENSLO = """
apiVersion: openslo/v1
kind: SLO
metadata:
  name: pulls-as-users-see-them
  annotations: {registry-slo/region: ignored-when-the-query-names-regions}
spec:
  service: registry
  indicator:
    metadata: {name: pulls}
    spec:
      ratioMetric:
        counter: true
        good:
          metricSource:
            type: Prometheus
            spec:
              query: >-
                sum(rate(registry_slo_registry_requests_total{job="registry-slo",
                region=~"us-east|eu-west",operation=~"pull_blob|pull_manifest"}[5m]))
                - sum(rate(registry_slo_registry_request_failures_total{job="registry-slo",
                region=~"us-east|eu-west",operation=~"pull_blob|pull_manifest",
                reason=~"server_error|timeout"}[5m]))
        total:
          metricSource:
            type: Prometheus
            spec:
              query: >-
                sum(rate(registry_slo_registry_requests_total{job="registry-slo",
                region=~"us-east|eu-west",operation=~"pull_manifest|pull_blob"}[5m]))
  timeWindow: [{duration: 4w, isRolling: true}]
  budgetingMethod: Occurrences
  objectives: [{target: 0.995}]
---
apiVersion: openslo/v1
kind: SLI
metadata: {name: fast-manifests}
spec:
  ratioMetric:
    counter: true
    good:
      metricSource:
        type: Prometheus
        spec:
          query: >-
            sum(registry_slo_registry_request_duration_seconds_bucket{region="us-east",
            source=~"us-east-registry|us-east-events",operation="pull_manifest",le="0.25"})
    total:
      metricSource:
        type: Prometheus
        spec:
          query: >-
            sum(registry_slo_registry_request_duration_seconds_count{region="us-east",
            source=~"us-east-registry|us-east-events",operation="pull_manifest"})
---
apiVersion: openslo/v1
kind: SLO
metadata: {name: manifest-latency}
spec:
  service: us-east
  indicatorRef: fast-manifests
  timeWindow: [{duration: 30d, isRolling: true}]
  budgetingMethod: Occurrences
  objectives: [{target: 0.99}]
"""


def test_openslo_traffic_slos_map() -> None:
    result = import_documents(docs(TRAFFIC_OPENSLO))
    assert not result.skipped, result.skipped
    assert result.slos == [
        {"name": "pulls-as-users-see-them",
         "sli": {"kind": "traffic_success", "operations": ["pull_blob", "pull_manifest"],
                 "errors": ["server_error", "timeout"]},
         "objective": 99.5, "period": "28d", "regions": ["us-east", "eu-west"]},
        {"name": "manifest-latency",
         "sli": {"kind": "traffic_latency", "operations": ["pull_manifest"],
                 "threshold": 0.25, "sources": ["us-east-registry", "us-east-events"]},
         "objective": 99.0, "regions": ["us-east"]},
    ]
    notes = "\n".join(result.notes)
    assert "dropped the matcher job='registry-slo'" in notes
    assert "no source matcher: the SLI counts the region's ingest log sources" in notes


# -- Sloth import ------------------------------------------------------------------------

FOREIGN_SLOTH = """
version: "prometheus/v1"
service: "k8s-apiserver"
labels:
  cluster: "valhalla"
  component: "kubernetes"
slos:
  - name: "requests-availability"
    objective: 99.9
    description: "Common SLO based on availability for Kubernetes apiserver HTTP request responses."
    sli:
      events:
        error_query: sum(rate(apiserver_request_total{code=~"(5..|429)"}[{{.window}}]))
        total_query: sum(rate(apiserver_request_total[{{.window}}]))
    alerting:
      name: K8sApiserverAvailabilityAlert
      page_alert:
        labels:
          severity: critical
  - name: "requests-latency"
    objective: 99
    sli:
      events:
        error_query: |
          (
            sum(rate(apiserver_request_duration_seconds_count{verb!="WATCH"}[{{.window}}]))
            -
            sum(rate(apiserver_request_duration_seconds_bucket{le="0.4",verb!="WATCH"}[{{.window}}]))
          )
        total_query: sum(rate(apiserver_request_duration_seconds_count{verb!="WATCH"}[{{.window}}]))
"""

OWN_SLOTH = """
version: "prometheus/v1"
service: "registry"
labels:
  owner: "registry-team"
  sloth_id: "x"
slos:
  - name: "pull-availability"
    objective: 99.9
    description: "Pulls succeed"
    sli:
      events:
        error_query: >-
          sum(rate(registry_slo_probe_failures_total{region="us-east",probe="pull"}[{{.window}}]))
        total_query: >-
          sum(rate(registry_slo_probe_requests_total{region="us-east",probe="pull"}[{{.window}}]))
    alerting:
      name: RegistryPullAvailability
      labels: {category: availability}
      annotations: {runbook: "https://runbooks.example.com/pulls"}
      page_alert: {labels: {severity: critical}}
      ticket_alert: {disable: true}
  - name: "pull-latency"
    objective: 99
    labels: {tier: "2"}
    sli:
      events:
        error_query: |
          (
            sum(rate(registry_slo_probe_duration_seconds_count{probe="pull"}[{{.window}}]))
            -
            sum(rate(registry_slo_probe_duration_seconds_bucket{le="2.5",probe="pull"}[{{.window}}]))
          )
        total_query: sum(rate(registry_slo_probe_duration_seconds_count{probe="pull"}[{{.window}}]))
    alerting: {name: PullLatency}
  - name: "auth"
    objective: 99.5
    sli:
      raw:
        error_ratio_query: |
          sum(rate(registry_slo_probe_failures_total{probe="auth"}[{{.window}}]))
          / sum(rate(registry_slo_probe_requests_total{probe="auth"}[{{.window}}]))
    alerting: {name: Auth}
  - name: "push-plugin"
    objective: 99
    sli:
      plugin:
        id: "sloth-common/kubernetes/apiserver/availability"
    alerting: {name: X}
"""


def test_sloth_specs_that_read_other_metrics_are_not_mapped() -> None:
    result = import_documents(docs(FOREIGN_SLOTH, "apiserver.yaml"))
    assert result.slos == []
    assert [line.split(":")[1].strip() for line in result.skipped] == [
        "slos[0] 'requests-availability'", "slos[1] 'requests-latency'"]
    assert "apiserver_request_total" in result.skipped[0]
    assert "apiserver_request_duration_seconds_bucket" in result.skipped[1]


def test_sloth_specs_on_the_exporters_series_map() -> None:
    result = import_documents(docs(OWN_SLOTH, "sloth.yaml"))
    assert result.slos == [
        {"name": "pull-availability", "description": "Pulls succeed",
         "sli": {"kind": "probe_success", "probe": "pull"}, "objective": 99.9,
         "regions": ["us-east"], "labels": {"owner": "registry-team"}},
        {"name": "pull-latency",
         "sli": {"kind": "probe_latency", "probe": "pull", "threshold": 2.5},
         "objective": 99.0, "labels": {"owner": "registry-team", "tier": "2"}},
        {"name": "auth", "sli": {"kind": "auth_success"}, "objective": 99.5,
         "labels": {"owner": "registry-team"}},
    ]
    assert len(result.skipped) == 1 and "plugin" in result.skipped[0]
    notes = "\n".join(result.notes)
    assert "label sloth_id: reserved" in notes
    assert ("alerting (name, labels, annotations, page_alert, ticket_alert) dropped"
            in notes)


TRAFFIC_SLOTH = """
version: "prometheus/v1"
service: "registry"
slos:
  - name: "push-latency"
    objective: 99
    sli:
      events:
        error_query: >-
          (
            sum(rate(registry_slo_registry_request_duration_seconds_count{region="eu-west",
              source="eu-west-registry",operation=~"push_manifest|push_blob"}[{{.window}}]))
            -
            sum(rate(registry_slo_registry_request_duration_seconds_bucket{region="eu-west",
              source="eu-west-registry",operation=~"push_manifest|push_blob",
              le="2.5"}[{{.window}}]))
          )
        total_query: >-
          sum(rate(registry_slo_registry_request_duration_seconds_count{region="eu-west",
          source="eu-west-registry",operation=~"push_manifest|push_blob"}[{{.window}}]))
  - name: "any-failure"
    objective: 99.9
    sli:
      events:
        error_query: >-
          sum(rate(registry_slo_registry_request_failures_total{
          source="us-east-registry",operation="catalog"}[{{.window}}]))
        total_query: >-
          sum(rate(registry_slo_registry_requests_total{
          source="us-east-registry",operation="catalog"}[{{.window}}]))
  - name: "pulls"
    objective: 99.9
    sli:
      raw:
        error_ratio_query: >-
          sum(rate(registry_slo_registry_request_failures_total{region="us-east",
          source="us-east-registry",operation=~"pull_manifest|pull_blob",
          reason="server_error"}[{{.window}}]))
          /
          (sum(rate(registry_slo_registry_requests_total{region="us-east",
          source="us-east-registry",operation=~"pull_manifest|pull_blob"}[{{.window}}])) > 0)
  - name: "fast-tags"
    objective: 95
    sli:
      raw:
        error_ratio_query: >-
          1 - sum(rate(registry_slo_registry_request_duration_seconds_bucket{
          source="us-east-registry",operation="tags_list",le="0.1"}[{{.window}}]))
          / sum(rate(registry_slo_registry_request_duration_seconds_count{
          source="us-east-registry",operation="tags_list"}[{{.window}}]))
  - name: "codes"
    objective: 99
    sli:
      events:
        error_query: >-
          sum(rate(registry_slo_registry_requests_total{
          source="us-east-registry",operation="pull_blob",code=~"5.."}[{{.window}}]))
        total_query: >-
          sum(rate(registry_slo_registry_requests_total{
          source="us-east-registry",operation="pull_blob"}[{{.window}}]))
"""


def test_sloth_traffic_slis_map() -> None:
    result = import_documents(docs(TRAFFIC_SLOTH, "sloth.yaml"))
    assert result.slos == [
        {"name": "push-latency",
         "sli": {"kind": "traffic_latency", "operations": ["push_manifest", "push_blob"],
                 "threshold": 2.5, "sources": ["eu-west-registry"]},
         "objective": 99.0, "regions": ["eu-west"]},
        # No reason matcher: failures of every reason count.
        {"name": "any-failure",
         "sli": {"kind": "traffic_success", "operations": ["catalog"],
                 "errors": [str(r) for r in Reason], "sources": ["us-east-registry"]},
         "objective": 99.9},
        {"name": "pulls",
         "sli": {"kind": "traffic_success", "operations": ["pull_manifest", "pull_blob"],
                 "errors": ["server_error"], "sources": ["us-east-registry"]},
         "objective": 99.9, "regions": ["us-east"]},
        {"name": "fast-tags",
         "sli": {"kind": "traffic_latency", "operations": ["tags_list"], "threshold": 0.1,
                 "sources": ["us-east-registry"]},
         "objective": 95.0},
    ]
    assert result.notes == []
    assert len(result.skipped) == 1
    assert "slos[4] 'codes'" in result.skipped[0]
    assert "code=~'5..'" in result.skipped[0] and "subset" in result.skipped[0]


REQUESTS = "registry_slo_registry_requests_total"
FAILURES = "registry_slo_registry_request_failures_total"


@pytest.mark.parametrize(("bad", "total", "message"), [
    (f'sum({FAILURES}{{region="us-east"}})', f'sum({REQUESTS}{{region="us-east"}})',
     f"{FAILURES} has no operation=\"…\" matcher: a traffic SLI needs operations"),
    (f'sum({FAILURES}{{operation="pull"}})', f'sum({REQUESTS}{{operation="pull"}})',
     "selects operation 'pull', not one the exporter counts"),
    (f'sum({FAILURES}{{operation=~"pull_.*"}})', f'sum({REQUESTS}{{operation=~"pull_.*"}})',
     "selects operations with =~'pull_.*'"),
    (f'sum({FAILURES}{{operation="pull_blob"}})',
     'sum(registry_slo_probe_requests_total{probe="pull"})',
     f"the queries mix probe series \\(registry_slo_probe_requests_total\\) and traffic "
     f"series \\({FAILURES}\\)"),
    (f'sum({FAILURES}{{operation="pull_blob",reason="server_error"}})',
     f'sum({REQUESTS}{{operation="pull_blob",reason="server_error"}})',
     f"{REQUESTS} has no reason label"),
    (f'sum({FAILURES}{{operation="pull_blob",reason="oops"}})',
     f'sum({REQUESTS}{{operation="pull_blob"}})',
     "selects reason 'oops', not one the exporter counts"),
    (f'sum({FAILURES}{{operation="pull_blob",probe="pull"}})',
     f'sum({REQUESTS}{{operation="pull_blob"}})',
     f"{FAILURES} has no probe label"),
    (f'sum({FAILURES}{{operation="pull_blob"}})', f'sum({REQUESTS}{{operation="push_blob"}})',
     "the queries select different operations"),
    (f'sum({FAILURES}{{operation="pull_blob",source="a"}})',
     f'sum({REQUESTS}{{operation="pull_blob"}})',
     "the queries select different sources"),
])
def test_traffic_queries_that_do_not_map(bad: str, total: str, message: str) -> None:
    with pytest.raises(MappingError, match=message):
        match_events(bad, total)


def test_a_raw_ratio_mixing_probe_and_traffic_series_does_not_map() -> None:
    with pytest.raises(MappingError, match="an SLI reads one or the other"):
        match_raw(f'sum(rate({FAILURES}{{operation="pull_blob"}}[5m])) / '
                  'sum(rate(registry_slo_probe_requests_total{probe="pull"}[5m]))')


def test_openslo_merges_the_sources_of_an_slos_regions() -> None:
    def document(region: str, source: str) -> dict[str, Any]:
        sel = f'region="{region}",source="{source}",operation="delete"'
        return {
            "apiVersion": "openslo/v1", "kind": "SLO",
            "metadata": {"name": f"deletes-{region}",
                         "annotations": {"registry-slo/slo": "deletes"}},
            "spec": {"indicator": {"spec": {"ratioMetric": {
                "counter": True,
                "bad": {"metricSource": {"type": "Prometheus", "spec": {
                    "query": f'sum({FAILURES}{{{sel},reason="server_error"}})'}}},
                "total": {"metricSource": {"type": "Prometheus", "spec": {
                    "query": f"sum({REQUESTS}{{{sel}}})"}}},
            }}}, "objectives": [{"target": 0.99}]},
        }

    result = import_documents([("a", document("us-east", "us-east-registry")),
                               ("b", document("eu-west", "eu-west-registry")),
                               ("c", document("us-east", "us-east-events"))])
    assert result.slos == [{
        "name": "deletes",
        "sli": {"kind": "traffic_success", "operations": ["delete"],
                "errors": ["server_error"],
                "sources": ["us-east-registry", "eu-west-registry"]},
        "objective": 99.0,
        "regions": ["us-east", "eu-west"],
    }]
    # Another source for a region already imported would change what it counts.
    assert len(result.skipped) == 1
    assert result.skipped[0].startswith("c (SLO 'deletes-us-east'): another SLO")


def test_the_generators_own_expressions_map_back_to_their_sli() -> None:
    """Every SLI error-ratio expression the rule generator writes, fed back as a Sloth
    raw SLI, is recognised as the same SLI in the same region."""
    settings = load_config(EXAMPLE)
    slos = []
    for target in settings.slo_targets():
        slos.append({"name": target.slo.name, "objective": target.slo.objective,
                     "sli": {"raw": {"error_ratio_query": error_ratio_expr(target, 300)}}})
    result = import_documents([("rules", {"version": "prometheus/v1", "service": "s",
                                          "slos": slos})])
    assert not result.skipped, result.skipped
    assert not result.notes, result.notes
    expected = expected_slos(settings)
    assert {s["name"] for s in result.slos} == set(expected)
    for imported in result.slos:
        spec = SLOSpec(**imported)
        assert spec.sli == expected[spec.name].sli
        assert spec.regions == expected[spec.name].regions


@pytest.mark.parametrize(("query", "expected"), [
    ('sum(rate(a_total{x="1", y=~"a|b"}[{{.window}}])) by (region)',
     [("a_total", {"x": ("=", "1"), "y": ("=~", "a|b")})]),
    ("max without (instance) (up offset 5m) / on(job) group_left(team) b_info",
     [("up", {}), ("b_info", {})]),
    ('1 - (lag{region="r"} <= bool 30)', [("lag", {"region": ("=", "r")})]),
    ('{__name__="m", a!="b"} > 1e3', [("m", {"a": ("!=", "b")})]),
])
def test_selectors(query: str, expected: list[tuple[str, dict[str, Any]]]) -> None:
    assert [(s.metric, s.matchers) for s in selectors(query)] == expected


def test_cli_export_and_import(tmp_path: Path) -> None:
    exported = tmp_path / "openslo.yaml"

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "registry_slo", "openslo", *args],
                              capture_output=True, text=True, timeout=60)

    done = cli("export", "--config", str(EXAMPLE), "--out", str(exported))
    assert done.returncode == 0, done.stderr
    assert "SLO document(s)" in done.stdout
    back = cli("import", str(exported))
    assert back.returncode == 0, back.stderr
    assert {s["name"] for s in yaml.safe_load(back.stdout)["slos"]} == {
        s.name for s in load_config(EXAMPLE).slos}
    foreign = tmp_path / "apiserver.yaml"
    foreign.write_text(FOREIGN_SLOTH)
    partial = cli("import", str(exported), str(foreign))
    assert partial.returncode == 1
    assert "registry-slo: not mapped:" in partial.stderr
    assert "apiserver_request_total" in partial.stdout  # in the header comment too
    missing = cli("import", str(tmp_path / "nope.yaml"))
    assert missing.returncode == 2 and "nope.yaml" in missing.stderr
