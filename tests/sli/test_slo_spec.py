"""The slos and alerting sections of the configuration (registry_slo.config)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, get_args

import pytest
import yaml

import registry_slo.config as config
import registry_slo.sli as sli
from registry_slo.config import ConfigError, Settings, SLOTopology, load_config
from registry_slo.sli.windows import DAY
from registry_slo.vocabulary import SLI_KINDS

REGIONS: list[dict[str, Any]] = [
    {"name": "us-east", "url": "http://127.0.0.1:5001"},
    {"name": "eu-west", "url": "http://127.0.0.1:5002", "replicates_from": "us-east",
     "probe": {"enabled": ["pull", "auth"]}},
]
PULL_SLO: dict[str, Any] = {
    "name": "pull-availability", "sli": {"kind": "probe_success", "probe": "pull"},
    "objective": 99.9,
}


def load(tmp_path: Path, slos: list[dict[str, Any]], **extra: Any) -> Settings:
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump({"regions": REGIONS, "slos": slos, **extra}))
    return load_config(path)


def error_of(tmp_path: Path, slos: list[dict[str, Any]], **extra: Any) -> str:
    with pytest.raises(ConfigError) as info:
        load(tmp_path, slos, **extra)
    return str(info.value)


def test_an_slo_with_defaults(tmp_path: Path) -> None:
    settings = load(tmp_path, [PULL_SLO])
    (slo,) = settings.slos
    assert slo.period == 30 * DAY
    assert slo.objective_ratio == 0.999
    assert slo.sli.probe_name == "pull"
    assert slo.regions is None
    assert slo.labels == {}
    assert settings.alerting.rule_mode == "full"
    assert (settings.alerting.page.name, settings.alerting.ticket.name) == ("page", "ticket")


def test_every_kind(tmp_path: Path) -> None:
    settings = load(tmp_path, [
        PULL_SLO,
        {"name": "lat", "sli": {"kind": "probe_latency", "probe": "pull", "threshold": "2s"},
         "objective": 99, "period": "28d", "labels": {"team": "registry", "tier": 1}},
        {"name": "lag", "sli": {"kind": "replication_lag", "threshold": "30s"},
         "objective": 99.5},
        {"name": "auth", "sli": {"kind": "auth_success"}, "objective": 99.9},
    ])
    pull, lat, lag, auth = settings.slos
    assert lat.sli.kind == "probe_latency"
    assert lat.sli.threshold == 2.0
    assert lat.period_seconds == 28 * DAY
    assert lat.labels == {"team": "registry", "tier": "1"}  # numbers become strings
    assert lag.sli.probe_name is None
    assert auth.sli.probe_name == "auth"
    probes = {r.name: r.probes for r in settings.regions}
    mirrors = ["eu-west"]
    topology = SLOTopology(probes, mirrors)
    assert topology.regions(pull) == ("us-east", "eu-west")
    assert topology.regions(lag) == ("eu-west",)


def test_default_regions_are_those_running_the_probe(tmp_path: Path) -> None:
    push = {"name": "push", "sli": {"kind": "probe_success", "probe": "push"}, "objective": 99}
    settings = load(tmp_path, [push])
    probes = {r.name: r.probes for r in settings.regions}
    assert SLOTopology(probes).regions(settings.slos[0]) == ("us-east",)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"color": "red"}, "slos[0].color: unknown key"),
        ({"sli": {"kind": "probe_success", "probe": "pull", "x": 1}}, "slos[0].sli.x: unknown key"),
        ({"sli": {"kind": "probe_latency", "probe": "pull"}}, "slos[0].sli.threshold"),
        ({"sli": {"kind": "availability"}}, "slos[0].sli"),
        ({"sli": {"kind": "probe_success", "probe": "delete"}}, "slos[0].sli.probe"),
        ({"objective": 100}, "objective: 100.0 must be a percentage in (0, 100)"),
        ({"objective": 0}, "objective"),
        ({"period": "36h"}, "period: 1d12h must be whole days"),
        ({"period": "1d"}, "period: must be at least 3d"),
        ({"name": "Pull Availability"}, "name: 'Pull Availability' must be lowercase"),
        ({"regions": []}, "regions: give at least one region"),
        ({"regions": ["us-east", "us-east"]}, "regions: lists a region twice"),
        ({"labels": {"severity": "high"}}, "labels.severity: reserved"),
        ({"labels": {"sloth_team": "x"}}, "labels.sloth_team: reserved"),
        ({"labels": {"team-name": "x"}}, "labels.team-name: not a valid Prometheus label name"),
        ({"labels": {"team": ""}}, "labels.team: must not be empty"),
    ],
)
def test_slo_errors_name_the_key(tmp_path: Path, change: dict[str, Any], message: str) -> None:
    assert message in error_of(tmp_path, [{**PULL_SLO, **change}])


def test_latency_threshold_must_be_positive(tmp_path: Path) -> None:
    slo = {**PULL_SLO, "sli": {"kind": "probe_latency", "probe": "pull", "threshold": 0}}
    assert "threshold: must be positive" in error_of(tmp_path, [slo])


@pytest.mark.parametrize(
    ("slos", "message"),
    [
        ([PULL_SLO, PULL_SLO], "slos[1].name: the name 'pull-availability' is used twice"),
        ([{**PULL_SLO, "regions": ["ap-south"]}], "slos[0].regions: no region named 'ap-south'"),
        (
            [{**PULL_SLO, "sli": {"kind": "probe_success", "probe": "push"},
              "regions": ["eu-west"]}],
            "slos[0].regions: region 'eu-west' does not run the push probe",
        ),
        (
            [{**PULL_SLO, "sli": {"kind": "replication_lag", "threshold": "30s"},
              "regions": ["us-east"]}],
            "slos[0].regions: region 'us-east' has no replicates_from",
        ),
        (
            [{**PULL_SLO, "sli": {"kind": "probe_success", "probe": "cache"}}],
            "slos[0]: no configured region runs the cache probe",
        ),
    ],
)
def test_slos_are_checked_against_the_regions(
    tmp_path: Path, slos: list[dict[str, Any]], message: str
) -> None:
    assert message in error_of(tmp_path, slos)


@pytest.mark.parametrize(
    ("alerting", "message"),
    [
        ({"page": {"name": "x"}, "ticket": {"name": "x"}}, "ticket.name: must differ"),
        ({"page": {"name": "p", "webhook_urls": ["ftp://x"]}}, "must be an http:// or https://"),
        ({"page": {"name": "p", "url": "http://127.0.0.1"}}, "alerting.page.url: unknown key"),
        ({"page": {"name": "bad name"}}, "not a valid receiver name"),
        ({"runbook_url": "runbooks"}, "runbook_url: 'runbooks' must be an http"),
        ({"rule_mode": "fast"}, "alerting.rule_mode"),
        ({"replication_lag_threshold": 0}, "replication_lag_threshold: must be positive"),
        ({"colour": 1}, "alerting.colour: unknown key"),
        (
            {"maintenance_windows": [{"name": "gc", "start": "03:00", "end": "02:00"}]},
            "split a window that crosses midnight",
        ),
        (
            {"maintenance_windows": [{"name": "gc", "start": "3am", "end": "04:00"}]},
            "start: '3am' must be HH:MM",
        ),
        (
            {"maintenance_windows": [
                {"name": "gc", "start": "02:00", "end": "03:00", "location": "Mars/Olympus"}
            ]},
            "location: 'Mars/Olympus' is not a known time zone",
        ),
        (
            {"maintenance_windows": [
                {"name": "gc", "start": "02:00", "end": "03:00", "weekdays": ["caturday"]}
            ]},
            "alerting.maintenance_windows[0].weekdays",
        ),
        (
            {"maintenance_windows": [
                {"name": "gc", "start": "02:00", "end": "03:00", "regions": ["nowhere"]}
            ]},
            "alerting.maintenance_windows[0].regions: no region named 'nowhere'",
        ),
        (
            {"maintenance_windows": [
                {"name": "gc", "start": "02:00", "end": "03:00"},
                {"name": "gc", "start": "04:00", "end": "05:00"},
            ]},
            "maintenance_windows: a name is used twice",
        ),
    ],
)
def test_alerting_errors_name_the_key(
    tmp_path: Path, alerting: dict[str, Any], message: str
) -> None:
    assert message in error_of(tmp_path, [PULL_SLO], alerting=alerting)


def test_a_full_alerting_section(tmp_path: Path) -> None:
    settings = load(tmp_path, [PULL_SLO], alerting={
        "rule_mode": "performance",
        "page": {"name": "oncall", "webhook_urls": ["http://127.0.0.1:9095/page"]},
        "ticket": {"name": "tickets", "send_resolved": False},
        "runbook_url": "https://runbooks.example.com/registry",
        "replication_lag_threshold": "10m",
        "maintenance_windows": [{
            "name": "gc", "weekdays": ["sunday"], "start": "02:00", "end": "24:00",
            "location": "Europe/Berlin", "regions": ["us-east"],
        }],
    })
    alerting = settings.alerting
    assert alerting.rule_mode == "performance"
    assert alerting.page.webhook_urls == ("http://127.0.0.1:9095/page",)
    assert alerting.ticket.send_resolved is False
    assert alerting.replication_lag_threshold == 600
    assert alerting.maintenance_windows[0].end == "24:00"


def test_the_example_configuration_is_valid() -> None:
    settings = load_config(Path(__file__).parents[2] / "examples" / "regions.yaml")
    assert len(settings.regions) >= 2
    assert {s.sli.kind for s in settings.slos} == set(SLI_KINDS)
    assert settings.alerting.runbook_url and settings.alerting.dashboard_url
    assert settings.alerting.maintenance_windows


def test_sli_kinds_are_the_config_models() -> None:
    # One definition: the discriminated union's kinds are the vocabulary's SLI kinds.
    kinds = {get_args(m.model_fields["kind"].annotation)[0] for m in get_args(get_args(
        config.SLI)[0])}
    assert kinds == set(SLI_KINDS)


def test_public_api() -> None:
    assert sorted(sli.__all__) == sorted([
        "BURN_RATE_TIERS", "BurnRateTier", "Cursor", "SLIEngine", "SLOStatus", "SLOStore",
        "StoreError", "TierStatus", "WindowStatus", "budget_consumed", "budget_remaining",
        "burn_factor", "burn_rate", "error_budget", "error_ratio", "objective_ratio",
        "slo_windows", "tier_firing", "time_to_exhaustion",
    ])
    for module in (sli, config):
        for name in module.__all__:
            assert hasattr(module, name)


# -- traffic SLIs (from what the ingest sources read) --------------------------------

LOGS: dict[str, Any] = {"logs": [
    {"name": "east-log", "region": "us-east", "format": "distribution",
     "paths": ["/var/log/east.log"]},
    {"name": "east-access", "region": "us-east", "format": "distribution-access",
     "paths": ["/var/log/east-access.log"]},
], "notifications": {"endpoints": [
    {"name": "west-events", "region": "eu-west", "format": "distribution"},
]}}
TRAFFIC_SLO: dict[str, Any] = {
    "name": "pull-traffic", "objective": 99.9,
    "sli": {"kind": "traffic_success", "operations": ["pull_manifest", "pull_blob"]},
}


def test_traffic_slis_default_to_the_regions_log_sources(tmp_path: Path) -> None:
    latency = {"name": "manifest-latency", "objective": 99,
               "sli": {"kind": "traffic_latency", "operations": ["pull_manifest"],
                       "threshold": "500ms"}}
    settings = load(tmp_path, [TRAFFIC_SLO, latency], ingest=LOGS)
    traffic, fast = settings.slos
    assert traffic.sli.kind == "traffic_success"
    assert traffic.sli.errors == ("server_error", "rate_limited")
    assert fast.sli.threshold == 0.5
    topology = settings.slo_topology()
    # eu-west only has a notification endpoint: not a default source (it sees no failures).
    assert topology.regions(traffic) == ("us-east",)
    assert topology.sources(traffic, "us-east") == ("east-log", "east-access")
    assert config.sli_summary(traffic.sli) == "pull_manifest, pull_blob requests served"
    assert config.sli_summary(fast.sli) == "pull_manifest requests ≤ 500ms"


def test_traffic_sli_with_named_sources(tmp_path: Path) -> None:
    slo = {**TRAFFIC_SLO, "sli": {**TRAFFIC_SLO["sli"], "sources": ["west-events", "east-log"],
                                  "errors": ["server_error"]}}
    settings = load(tmp_path, [slo], ingest=LOGS)
    topology = settings.slo_topology()
    (spec,) = settings.slos
    assert topology.regions(spec) == ("us-east", "eu-west")
    assert topology.sources(spec, "eu-west") == ("west-events",)
    assert topology.sources(spec, "us-east") == ("east-log",)


@pytest.mark.parametrize(("sli_update", "ingest", "expected"), [
    ({}, {}, "slos[0]: no configured region has an ingest source to count (ingest.logs)"),
    ({"operations": []}, LOGS, "slos[0].sli: operations: give at least one operation"),
    ({"operations": ["pull"]}, LOGS, "unknown operation(s) 'pull' (known: auth, catalog"),
    ({"operations": ["pull_blob", "pull_blob"]}, LOGS, "lists an operation twice"),
    ({"errors": ["teapot"]}, LOGS, "slos[0].sli.errors[0]"),
    ({"errors": []}, LOGS, "errors: give each failure reason once"),
    ({"sources": ["nope"]}, LOGS,
     "slos[0].sli.sources: no ingest log or notification source named 'nope'"),
])
def test_traffic_sli_errors_name_the_key(
    tmp_path: Path, sli_update: dict[str, Any], ingest: dict[str, Any], expected: str
) -> None:
    slo = {**TRAFFIC_SLO, "sli": {**TRAFFIC_SLO["sli"], **sli_update}}
    message = error_of(tmp_path, [slo], ingest=ingest)
    assert expected.replace("Value error, ", "") in message, message


def test_traffic_slo_in_a_region_without_sources(tmp_path: Path) -> None:
    slo = {**TRAFFIC_SLO, "regions": ["eu-west"]}
    message = error_of(tmp_path, [slo], ingest=LOGS)
    assert "slos[0].regions: region 'eu-west' has no ingest source to count" in message
