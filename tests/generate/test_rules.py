"""Recording rules: Sloth's names and labels, the SLI expressions, the two modes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from registry_slo.config import Settings, SLOTarget
from registry_slo.generate import GenerationError, render
from registry_slo.generate._model import num
from registry_slo.generate.indicators import latency_bucket
from registry_slo.generate.rules import (
    MAX_SUBQUERY_STEPS,
    error_ratio_expr,
    recording_rules,
    subquery_resolution,
)
from registry_slo.sli.windows import DAY, HOUR, MINUTE
from registry_slo.vocabulary import DURATION_BUCKETS

SLOTH_NAMES = [
    "slo:objective:ratio", "slo:error_budget:ratio", "slo:time_period:days",
    "slo:current_burn_rate:ratio", "slo:period_burn_rate:ratio",
    "slo:period_error_budget_remaining:ratio", "slo:info",
]


def settings(slos: list[dict[str, Any]], ingest: dict[str, Any] | None = None,
             **alerting: Any) -> Settings:
    return Settings(
        regions=[
            {"name": "us-east", "url": "http://127.0.0.1:5001"},
            {"name": "eu-west", "url": "http://127.0.0.1:5002", "replicates_from": "us-east"},
        ],
        slos=slos,
        alerting=alerting,
        ingest=ingest or {},
    )


def target(slo: dict[str, Any], region: str = "us-east") -> SLOTarget:
    return next(t for t in settings([slo]).slo_targets() if t.region == region)


PULL = {"name": "pull", "sli": {"kind": "probe_success", "probe": "pull"}, "objective": 99.9}
LATENCY = {
    "name": "lat", "sli": {"kind": "probe_latency", "probe": "pull", "threshold": "2s"},
    "objective": 99, "period": "28d", "labels": {"team": "registry", "tier": "1"},
}
LAG = {"name": "lag", "sli": {"kind": "replication_lag", "threshold": "30s"}, "objective": 99.5}


def test_sloth_names_windows_and_identity_labels() -> None:
    rules = recording_rules(target(PULL), "full")
    names = [r["record"] for r in rules]
    windows = ["5m", "30m", "1h", "2h", "6h", "1d", "3d", "30d"]
    assert names == [f"slo:sli_error:ratio_rate{w}" for w in windows] + SLOTH_NAMES
    identity = {
        "region": "us-east", "sloth_id": "us-east-pull", "sloth_service": "us-east",
        "sloth_slo": "pull",
    }
    for rule, window in zip(rules, windows, strict=False):
        assert rule["labels"] == {**identity, "sloth_window": window}
    for rule in rules[len(windows):-1]:
        assert rule["labels"] == identity


def test_the_period_window_follows_the_period() -> None:
    names = [r["record"] for r in recording_rules(target(LATENCY), "full")]
    assert "slo:sli_error:ratio_rate28d" in names
    assert "slo:sli_error:ratio_rate30d" not in names


def test_metadata_lives_on_the_info_metric_only() -> None:
    rules = recording_rules(target(LATENCY), "full")
    info = rules[-1]
    assert info["record"] == "slo:info"
    assert info["expr"] == "vector(1)"
    assert info["labels"] == {
        "region": "us-east", "sloth_id": "us-east-lat", "sloth_service": "us-east",
        "sloth_slo": "lat", "sloth_mode": "full", "sloth_objective": "99", "period": "28d",
        "sli_kind": "probe_latency", "sli_probe": "pull", "sli_threshold": "2s",
        "team": "registry", "tier": "1",
    }
    for rule in rules[:-1]:
        assert "team" not in rule["labels"]
        assert "sloth_objective" not in rule["labels"]


def test_objective_budget_and_period_values() -> None:
    by_name = {r["record"]: r for r in recording_rules(target(LATENCY), "full")}
    assert by_name["slo:objective:ratio"]["expr"] == "vector(0.99)"
    assert by_name["slo:error_budget:ratio"]["expr"] == "vector(0.01)"
    assert by_name["slo:time_period:days"]["expr"] == "vector(28)"
    assert "slo:sli_error:ratio_rate28d{" in by_name["slo:period_burn_rate:ratio"]["expr"]
    assert "slo:sli_error:ratio_rate5m{" in by_name["slo:current_burn_rate:ratio"]["expr"]


def test_probe_success_reads_failures_over_requests() -> None:
    expr = error_ratio_expr(target(PULL), 5 * MINUTE)
    selector = '{region="us-east",probe="pull"}'
    assert f"sum(rate(registry_slo_probe_failures_total{selector}[5m]))" in expr
    # no failure series yet means a ratio of 0, not no ratio
    assert f"0 * sum(rate(registry_slo_probe_requests_total{selector}[5m]))" in expr
    # no runs means no ratio, not NaN
    assert f"(sum(rate(registry_slo_probe_requests_total{selector}[5m])) > 0)" in expr


def test_auth_success_reads_the_auth_probe() -> None:
    slo = {"name": "auth", "sli": {"kind": "auth_success"}, "objective": 99.9}
    assert 'probe="auth"' in error_ratio_expr(target(slo), HOUR)


def test_probe_latency_reads_the_bucket_at_the_threshold() -> None:
    expr = error_ratio_expr(target(LATENCY), HOUR)
    assert expr.startswith("1 - (")
    assert 'registry_slo_probe_duration_seconds_bucket{region="us-east",probe="pull",le="2.0"}' \
        in expr
    assert "registry_slo_probe_duration_seconds_count" in expr


@pytest.mark.parametrize("bucket", DURATION_BUCKETS)
def test_every_bucket_is_a_valid_threshold(bucket: float) -> None:
    slo = {**LATENCY, "sli": {**LATENCY["sli"], "threshold": bucket}}  # type: ignore[dict-item]
    assert float(latency_bucket(target(slo))) == bucket


def test_a_threshold_between_buckets_fails_naming_the_slo() -> None:
    slo = {**LATENCY, "sli": {**LATENCY["sli"], "threshold": "3s"}}  # type: ignore[dict-item]
    with pytest.raises(GenerationError) as info:
        render(settings([PULL, slo]))
    message = str(info.value)
    assert "SLO 'lat'" in message
    assert "3s is not a bucket boundary of registry_slo_probe_duration_seconds" in message
    assert "2s, 2.5s, 5s" in message


def test_replication_lag_is_the_fraction_of_time_behind_or_unknown() -> None:
    lag = target(LAG, "eu-west")
    expr = error_ratio_expr(lag, HOUR)
    assert expr == (
        "avg_over_time(\n"
        '  (max(1 - (registry_slo_replication_lag_seconds{region="eu-west"} <= bool 30)))'
        "[1h:]\n)\n"
    )
    rules = {r["record"]: r["expr"] for r in recording_rules(lag, "full")}
    # windows up to 1d are subqueries; longer ones average the 5m recording
    assert rules["slo:sli_error:ratio_rate1d"].startswith("avg_over_time(")
    for window in ("3d", "30d"):
        assert rules[f"slo:sli_error:ratio_rate{window}"].startswith(
            'sum_over_time(slo:sli_error:ratio_rate5m{sloth_id="eu-west-lag"}'
        )


def test_lag_subqueries_stay_within_a_bounded_number_of_steps() -> None:
    """At a short evaluation interval a 1d subquery would take 5,760 (15s) to 86,400 (1s)
    steps per evaluation, which promtool refuses: the step is coarsened instead."""
    lag = target(LAG, "eu-west")
    at_1m = {r["record"]: r["expr"] for r in recording_rules(lag, "full", 60)}
    at_15s = {r["record"]: r["expr"] for r in recording_rules(lag, "full", 15)}
    assert "[1d:]" in at_1m["slo:sli_error:ratio_rate1d"]  # 1,440 steps
    assert "[1d:44s]" in at_15s["slo:sli_error:ratio_rate1d"]  # 1,964 steps
    assert "[6h:]" in at_15s["slo:sli_error:ratio_rate6h"]
    assert "[1h:2s]" in error_ratio_expr(lag, HOUR, evaluation=1)


@given(window=st.integers(60, 30 * DAY), evaluation=st.integers(1, 300))
def test_every_subquery_has_at_most_the_bounded_steps(window: int, evaluation: int) -> None:
    step = subquery_resolution(window, evaluation)
    assert window / (evaluation if step is None else step) <= MAX_SUBQUERY_STEPS
    assert step is None or step > evaluation


def test_performance_mode_builds_long_windows_from_the_5m_recording() -> None:
    full = {r["record"]: r["expr"] for r in recording_rules(target(PULL), "full")}
    perf = {r["record"]: r["expr"] for r in recording_rules(target(PULL), "performance")}
    assert perf["slo:sli_error:ratio_rate5m"] == full["slo:sli_error:ratio_rate5m"]
    assert perf["slo:sli_error:ratio_rate6h"] == (
        'sum_over_time(slo:sli_error:ratio_rate5m{sloth_id="us-east-pull"}[6h])\n'
        "/ ignoring (sloth_window)\n"
        'count_over_time(slo:sli_error:ratio_rate5m{sloth_id="us-east-pull"}[6h])\n'
    )
    for window in ("30m", "1h", "2h", "1d", "3d", "30d"):
        assert "registry_slo_probe" not in perf[f"slo:sli_error:ratio_rate{window}"]
    info = recording_rules(target(PULL), "performance")[-1]
    assert info["labels"]["sloth_mode"] == "performance"


def test_one_group_per_slo_and_region(tmp_path: Path) -> None:
    files = render(settings([PULL, LAG]))
    pull = yaml.safe_load(files["rules/slo-pull.yml"])
    assert [g["name"] for g in pull["groups"]] == [
        "registry-slo/slo/pull/us-east", "registry-slo/slo/pull/eu-west",
    ]
    lag = yaml.safe_load(files["rules/slo-lag.yml"])
    assert [g["name"] for g in lag["groups"]] == ["registry-slo/slo/lag/eu-west"]
    rules = pull["groups"][0]["rules"]
    # recordings first, then the alerts that read them (one group: same evaluation)
    kinds = ["record" if "record" in r else "alert" for r in rules]
    assert kinds == sorted(kinds, reverse=True)


def test_numbers_render_without_float_noise() -> None:
    assert num(1 - 0.999) == "0.001"
    assert num(14.4) == "14.4"
    assert num(0.1 * 28 / 3) == "0.933333333333"
    assert num(1e-05) == "0.00001"
    assert num(30.0) == "30"
    assert num(DAY) == "86400"


# -- traffic SLIs ----------------------------------------------------------------------

INGEST = {"logs": [
    {"name": "east-log", "region": "us-east", "format": "distribution",
     "paths": ["/var/log/east.log"]},
    {"name": "east-access", "region": "us-east", "format": "distribution-access",
     "paths": ["/var/log/east-access.log"]},
]}
TRAFFIC = {"name": "pulls", "objective": 99.9,
           "sli": {"kind": "traffic_success", "operations": ["pull_manifest", "pull_blob"]}}
TRAFFIC_LATENCY = {"name": "fast-manifests", "objective": 99,
                   "sli": {"kind": "traffic_latency", "operations": ["pull_manifest"],
                           "threshold": "500ms"}}


def traffic_target(slo: dict[str, Any]) -> SLOTarget:
    (found,) = settings([slo], INGEST).slo_targets()
    return found


def test_traffic_success_reads_the_ingest_series_of_its_sources() -> None:
    t = traffic_target(TRAFFIC)
    assert (t.region, t.sources) == ("us-east", ("east-log", "east-access"))
    sel = ('region="us-east",source=~"east-log|east-access",'
           'operation=~"pull_manifest|pull_blob"')
    requests = f"sum(rate(registry_slo_registry_requests_total{{{sel}}}[1h]))"
    assert error_ratio_expr(t, HOUR) == (
        "(\n"
        f'  sum(rate(registry_slo_registry_request_failures_total{{{sel},'
        'reason=~"server_error|rate_limited"}[1h]))\n'
        "  or\n"
        f"  0 * {requests}\n"
        ")\n/\n"
        f"({requests} > 0)\n"
    )
    info = recording_rules(t, "full")[-1]["labels"]
    assert info["sli_kind"] == "traffic_success"
    assert info["sli_operations"] == "pull_manifest,pull_blob"
    assert info["sli_sources"] == "east-log,east-access"
    assert info["sli_errors"] == "server_error,rate_limited"


def test_traffic_latency_reads_the_registry_duration_histogram() -> None:
    t = traffic_target(TRAFFIC_LATENCY)
    assert latency_bucket(t) == "0.5"
    expr = error_ratio_expr(t, 5 * MINUTE)
    assert ('registry_slo_registry_request_duration_seconds_bucket{region="us-east",'
            'source=~"east-log|east-access",operation="pull_manifest",le="0.5"}[5m]') in expr
    assert "registry_slo_registry_request_duration_seconds_count{" in expr
    assert recording_rules(t, "full")[-1]["labels"]["sli_threshold"] == "500ms"


def test_traffic_latency_threshold_must_be_a_bucket() -> None:
    slo = {**TRAFFIC_LATENCY, "sli": {**TRAFFIC_LATENCY["sli"], "threshold": "300ms"}}
    with pytest.raises(GenerationError,
                       match="300ms is not a bucket boundary of "
                             "registry_slo_registry_request_duration_seconds"):
        latency_bucket(traffic_target(slo))


def test_traffic_slo_absent_alert_watches_its_sources() -> None:
    from registry_slo.generate.alerts import absent_alert

    alert = absent_alert(traffic_target(TRAFFIC), settings([TRAFFIC], INGEST).alerting)
    assert alert["expr"] == (
        'absent(registry_slo_ingest_lines_total{source=~"east-log|east-access"})')
    assert "east-log, east-access" in alert["annotations"]["description"]
