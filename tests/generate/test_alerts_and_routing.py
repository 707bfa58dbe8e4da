"""Alerting rules and the Alertmanager configuration (no external tools)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from registry_slo.config import ConfigError, Settings, load_config
from registry_slo.generate import alerts, warnings
from registry_slo.generate.alertmanager import alertmanager_config

ALERTING: dict[str, Any] = {
    "page": {"name": "oncall", "webhook_urls": ["http://127.0.0.1:9095/page"]},
    "ticket": {"name": "tickets"},
    "runbook_url": "https://runbooks.example.com/registry/",
    "dashboard_url": "https://grafana.example.com/d/slo?orgId=1",
}
PULL = {
    "name": "pull", "sli": {"kind": "probe_success", "probe": "pull"}, "objective": 99.9,
    "labels": {"team": "registry", "tier": "1"}, "description": "Pulls succeed",
}


def settings(slos: list[dict[str, Any]] | None = None, **alerting: Any) -> Settings:
    return Settings(
        regions=[
            {"name": "us-east", "url": "http://127.0.0.1:5001"},
            {"name": "eu-west", "url": "http://127.0.0.1:5002", "replicates_from": "us-east",
             "probe": {"interval": "1m", "enabled": ["pull"]}},
        ],
        slos=slos if slos is not None else [PULL],
        alerting={**ALERTING, **alerting},
    )


def test_four_burn_rate_rows_with_labels_annotations_and_for() -> None:
    s = settings()
    target = s.slo_targets()[0]
    rules = alerts.burn_rate_alerts(target, s.alerting)
    assert [r["alert"] for r in rules] == [alerts.PAGE_ALERT] * 2 + [alerts.TICKET_ALERT] * 2
    assert [r.get("for") for r in rules] == [None, "5m", "30m", "1h30m"]
    assert [(r["labels"]["long_window"], r["labels"]["short_window"]) for r in rules] == [
        ("1h", "5m"), ("6h", "30m"), ("1d", "2h"), ("3d", "6h"),
    ]
    for rule in rules:
        assert rule["labels"]["severity"] in ("page", "ticket")
        assert rule["labels"]["team"] == "registry"
        assert rule["labels"]["tier"] == "1"
        assert rule["labels"]["sloth_id"] == "us-east-pull"
        assert rule["annotations"]["runbook_url"] == "https://runbooks.example.com/registry/pull"
        assert rule["annotations"]["dashboard_url"] == (
            "https://grafana.example.com/d/slo?orgId=1&var-region=us-east&var-slo=pull"
        )
        assert rule["annotations"]["description"].startswith("Pulls succeed. ")
    page = rules[0]["expr"]
    assert 'slo:sli_error:ratio_rate1h{sloth_id="us-east-pull"} > (14.4 * 0.001)' in page
    assert 'slo:sli_error:ratio_rate5m{sloth_id="us-east-pull"} > (14.4 * 0.001)' in page
    assert "\nand\n" in page
    assert "all of it in 2d2h at this rate" in rules[0]["annotations"]["description"]


def test_factors_are_scaled_for_a_28_day_period() -> None:
    s = settings([{**PULL, "period": "28d"}])
    exprs = [r["expr"] for r in alerts.burn_rate_alerts(s.slo_targets()[0], s.alerting)]
    for expr, factor in zip(exprs, ["13.44", "5.6", "2.8", "0.9333333333"], strict=True):
        assert f"({factor} * 0.001)" in expr


def test_without_bases_there_are_no_link_annotations() -> None:
    s = settings(runbook_url=None, dashboard_url=None)
    for rule in alerts.burn_rate_alerts(s.slo_targets()[0], s.alerting):
        assert set(rule["annotations"]) == {"summary", "description"}


def test_the_absent_alert() -> None:
    s = settings()
    rule = alerts.absent_alert(s.slo_targets()[0], s.alerting)
    assert rule["expr"] == 'absent(slo:sli_error:ratio_rate5m{sloth_id="us-east-pull"})'
    assert rule["for"] == "10m"
    assert rule["labels"]["severity"] == "ticket"
    assert rule["annotations"]["runbook_url"].endswith("/sli-absent")


def test_registry_alerts_per_region() -> None:
    groups = alerts.registry_alerts(settings())
    assert [g["name"] for g in groups] == [
        "registry-slo/registry/us-east", "registry-slo/registry/eu-west",
    ]
    us_east = {r["alert"] for r in groups[0]["rules"]}
    eu_west = {r["alert"]: r for r in groups[1]["rules"]}
    # only mirrors have replication lag
    assert alerts.REPLICATION_LAG_ALERT not in us_east
    assert set(eu_west) == us_east | {alerts.REPLICATION_LAG_ALERT}
    # thresholds follow the region's probe interval (1m in eu-west): three intervals,
    # plus the age a sample can have (a 30s scrape and a 1m evaluation)
    assert eu_west[alerts.NOT_RUNNING_ALERT]["expr"].endswith("> 270")
    assert eu_west[alerts.NEVER_RAN_ALERT]["for"] == "4m30s"
    assert "[10m]" in eu_west[alerts.SKIPPED_ALERT]["expr"]
    assert eu_west[alerts.BLOB_INTEGRITY_ALERT]["labels"]["severity"] == "page"
    assert 'reason="digest_mismatch"' in eu_west[alerts.BLOB_INTEGRITY_ALERT]["expr"]
    # the exporter creates the counter at zero: only a rise fires, never a series that
    # is merely present (no `unless ... offset`, which fires on a fresh start)
    integrity = eu_west[alerts.BLOB_INTEGRITY_ALERT]["expr"]
    assert "increase(" in integrity and "[15m]" in integrity
    assert "unless" not in integrity and "offset" not in integrity
    assert "<= 300" in eu_west[alerts.REPLICATION_LAG_ALERT]["expr"]


def test_routing_tree_and_inhibitions() -> None:
    config = alertmanager_config(settings().alerting, ["us-east", "eu-west"])
    route = config["route"]
    assert route["receiver"] == "tickets"
    assert route["group_by"] == ["alertname", "region", "repository"]
    page, ticket = route["routes"]
    assert (page["receiver"], page["matchers"]) == ("oncall", ['severity="page"'])
    assert (ticket["receiver"], ticket["matchers"]) == ("tickets", ['severity="ticket"'])
    assert "mute_time_intervals" not in page
    assert config["receivers"] == [
        {"name": "oncall",
         "webhook_configs": [{"url": "http://127.0.0.1:9095/page", "send_resolved": True}]},
        {"name": "tickets"},
    ]
    slo_inhibit = config["inhibit_rules"][0]
    assert slo_inhibit["source_matchers"][0] == 'severity="page"'
    assert slo_inhibit["target_matchers"][0] == 'severity="ticket"'
    assert slo_inhibit["equal"] == ["sloth_slo", "region"]
    assert "time_intervals" not in config


def test_maintenance_windows_mute_their_regions_only() -> None:
    windows = [
        {"name": "gc-us", "weekdays": ["sunday"], "start": "02:00", "end": "03:00",
         "regions": ["us-east"]},
        {"name": "freeze", "start": "00:00", "end": "24:00", "location": "Europe/Berlin",
         "weekdays": ["saturday"]},
    ]
    config = alertmanager_config(
        settings(maintenance_windows=windows).alerting, ["us-east", "eu-west"]
    )
    assert config["time_intervals"] == [
        {"name": "gc-us", "time_intervals": [{
            "weekdays": ["sunday"], "times": [{"start_time": "02:00", "end_time": "03:00"}],
            "location": "UTC",
        }]},
        {"name": "freeze", "time_intervals": [{
            "weekdays": ["saturday"], "times": [{"start_time": "00:00", "end_time": "24:00"}],
            "location": "Europe/Berlin",
        }]},
    ]
    for route in config["route"]["routes"]:
        # everywhere: on the route; us-east also gets its own window (children do not
        # inherit mute_time_intervals)
        assert route["mute_time_intervals"] == ["freeze"]
        assert route["routes"] == [
            {"matchers": ['region=~"us-east"'], "mute_time_intervals": ["gc-us", "freeze"]},
        ]


def test_warnings() -> None:
    risky = settings([{**PULL, "objective": 99.95}, {**PULL, "name": "loose", "objective": 90}])
    found = warnings(risky)
    assert any("'pull' in us-east" in w and "a single failure pages" in w for w in found)
    # eu-west probes every minute: even 99.9% pages on one failure there
    assert any("'pull' in eu-west" in w and "a single failure pages" in w for w in found)
    assert any("'loose'" in w and "can never page" in w for w in found)
    lag = {"name": "lag", "sli": {"kind": "replication_lag", "threshold": "30s"}}
    lag_warnings = warnings(settings([{**lag, "objective": 99.9}]))
    assert len(lag_warnings) == 1
    assert "'lag' in eu-west" in lag_warnings[0]
    assert "one bad evaluation pages" in lag_warnings[0]
    assert warnings(settings([{**lag, "objective": 99.5}])) == []
    assert not any("'pull' in us-east" in w for w in warnings(settings()))



def test_windows_hold_four_scrapes_of_the_configured_prometheus() -> None:
    """A 2s probe interval gives a 20s skipped-runs window, which a 30s scrape can never
    fill: it is raised to 4 scrapes (2m), and the generator says so."""
    fast = Settings(
        regions=[{"name": "fast", "url": "http://127.0.0.1:5001",
                  "probe": {"interval": "2s", "timeout": "1s"}}],
        prometheus={"scrape_interval": "30s", "evaluation_interval": "1m"},
    )
    (group,) = alerts.registry_alerts(fast)
    rules = {r["alert"]: r for r in group["rules"]}
    assert "[2m]" in rules[alerts.SKIPPED_ALERT]["expr"]
    assert any("RegistryProbeRunsSkipped counts skipped runs over 2m" in w
               for w in warnings(fast))
    faster = Settings(regions=fast.regions, prometheus={"scrape_interval": "10s"})
    (group,) = alerts.registry_alerts(faster)
    assert "[40s]" in {r["alert"]: r for r in group["rules"]}[alerts.SKIPPED_ALERT]["expr"]


@pytest.mark.parametrize(("key", "value", "message"), [
    ("scrape_interval", "2m", "at most 75s"),
    ("evaluation_interval", "10m", "at most 5m"),
    ("scrape_interval", "1500ms", "whole seconds"),
])
def test_prometheus_intervals_that_the_rules_cannot_serve_are_errors(
    tmp_path: Path, key: str, value: str, message: str
) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(f"prometheus:\n  {key}: {value}\n")
    with pytest.raises(ConfigError) as raised:
        load_config(path)
    assert f"prometheus.{key}" in str(raised.value) and message in str(raised.value)
    assert str(path) in str(raised.value)
