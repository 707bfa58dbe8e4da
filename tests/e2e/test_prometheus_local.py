"""LocalPrometheus: a real Prometheus on 127.0.0.1, its config, and the query helpers."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from conftest import require_binary
from harness.prometheus import (
    LocalPrometheus,
    PrometheusQueryError,
    PrometheusStartError,
    prometheus_binary,
    prometheus_duration,
    scrape_job,
)

RULES = {
    "groups": [{
        "name": "test",
        "rules": [
            {"record": "test:up:count", "expr": "count(up)"},
            {"alert": "AlwaysFiring", "expr": "vector(1)", "labels": {"severity": "page"}},
        ],
    }],
}


@pytest.fixture
def prometheus(tmp_path: Path) -> Iterator[LocalPrometheus]:
    require_binary("prometheus")
    rules = tmp_path / "rules.yml"
    rules.write_text(yaml.safe_dump(RULES))
    prom = LocalPrometheus(rule_files=[rules], scrape_interval=0.5, evaluation_interval=0.5)
    with prom:
        # Prometheus scrapes itself: the port is only known once it runs.
        prom.scrape_configs = [scrape_job("self", [prom.address])]
        prom.reload()
        yield prom


def test_durations() -> None:
    assert prometheus_duration(0.5) == "500ms"
    assert prometheus_duration(1) == "1s"
    assert prometheus_duration(90) == "90s"
    assert prometheus_duration(120) == "2m"
    assert prometheus_duration(7200) == "2h"
    with pytest.raises(ValueError, match="positive"):
        prometheus_duration(0)


def test_config_and_command_line_keep_everything_local(tmp_path: Path) -> None:
    require_binary("prometheus")
    prom = LocalPrometheus(scrape_configs=[scrape_job("x", ["127.0.0.1:1"], metrics_path="/m")],
                           scrape_interval=1, evaluation_interval=30, retention="1d",
                           feature_flags=["exemplar-storage"])
    with prom:
        config = yaml.safe_load(prom.config_path.read_text())
        assert config["global"] == {"scrape_interval": "1s", "scrape_timeout": "1s",
                                    "evaluation_interval": "30s"}
        assert config["scrape_configs"] == [{"job_name": "x", "metrics_path": "/m",
                                             "static_configs": [{"targets": ["127.0.0.1:1"]}]}]
        command = prom.command()
        assert command[0] == str(prometheus_binary())
        assert f"--web.listen-address=127.0.0.1:{prom.port}" in command
        assert f"--storage.tsdb.path={prom.data_dir}" in command
        assert "--enable-feature=exemplar-storage" in command
        assert "--storage.tsdb.retention.time=1d" in command
        assert prom.data_dir.is_relative_to(prom.workdir) and prom.data_dir.is_dir()
        workdir = prom.workdir
    assert not prom.running and not workdir.exists()


def test_scrapes_records_alerts_and_answers_queries(prometheus: LocalPrometheus) -> None:
    prom = prometheus
    targets = prom.wait_for_targets(timeout=20)
    assert [t["labels"]["job"] for t in targets] == ["self"]
    up = prom.query("up")
    assert len(up) == 1 and up[0].value == 1.0 and up[0].labels["job"] == "self"
    recorded = prom.wait_for("test:up:count", timeout=20)
    assert recorded[0].value == 1.0
    assert prom.query("scalar(test:up:count) + 1")[0].value == 2.0
    series = prom.query_range("up", time.time() - 30, time.time(), 0.5)
    assert len(series) == 1 and series[0].values and series[0].values[-1][1] == 1.0
    assert prom.label_values("job") == ["self"]
    assert prom.label_values("job", ['up{job="nope"}']) == []
    firing = prom.wait_for('ALERTS{alertname="AlwaysFiring",alertstate="firing"}', timeout=20)
    assert firing[0].labels["severity"] == "page"
    assert [a["labels"]["alertname"] for a in prom.alerts()] == ["AlwaysFiring"]
    groups = prom.rule_groups()
    assert [g["name"] for g in groups] == ["test"]
    assert all(r["health"] == "ok" for r in groups[0]["rules"])
    assert "prometheus_rule_group_last_duration_seconds" in prom.own_metrics()


def test_query_errors_name_the_expression(prometheus: LocalPrometheus) -> None:
    with pytest.raises(PrometheusQueryError, match=r"sum\(up: bad_data") as caught:
        prometheus.query("sum(up")
    assert caught.value.error_type == "bad_data" and caught.value.expr == "sum(up"
    with pytest.raises(PrometheusQueryError, match="bad_data"):
        prometheus.query_range("up[", time.time() - 10, time.time(), 1)
    with pytest.raises(TimeoutError, match="absent_metric"):
        prometheus.wait_for("absent_metric", timeout=0.5)


def test_restart_keeps_port_and_data(prometheus: LocalPrometheus) -> None:
    prom = prometheus
    prom.wait_for("test:up:count", timeout=20)
    port = prom.port
    prom.restart()
    assert prom.port == port
    assert prom.query_range("test:up:count", time.time() - 60, time.time(), 1)


def test_a_broken_rule_file_fails_the_start_with_the_log(tmp_path: Path) -> None:
    require_binary("prometheus")
    rules = tmp_path / "broken.yml"
    rules.write_text("groups:\n  - name: x\n    rules:\n      - record: a\n        expr: 'sum('\n")
    prom = LocalPrometheus(rule_files=[rules], start_timeout=20)
    with pytest.raises(PrometheusStartError, match="exited with status"):
        prom.start()
    try:
        assert "broken.yml" in prom.log_tail(50)
    finally:
        prom.stop()
    assert not prom.running
