"""``registry-slo report --state-dir``: the review from the exporter's own SLO store.

Known probe results are fed to the real SLI engine with a state directory over a week
(a run a minute, a two-hour outage), the engine flushes and closes as the exporter does,
and the report read from its store has the attainment, budget and an incident that the
test counts from what it fed; with a store held open by a running engine too."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import yaml

from registry_slo.config import Settings
from registry_slo.observation import Observation
from registry_slo.oci import Reason
from registry_slo.sli.engine import SLIEngine

START = datetime(2026, 11, 10, tzinfo=UTC).timestamp()
END = datetime(2026, 11, 17, tzinfo=UTC).timestamp()
OUTAGE = (datetime(2026, 11, 12, 6, tzinfo=UTC).timestamp(),
          datetime(2026, 11, 12, 8, tzinfo=UTC).timestamp())
CONFIG = {
    "regions": [{"name": "r", "url": "http://127.0.0.1:5000",
                 "probe": {"enabled": ["pull"], "interval": "1m"}}],
    "slos": [{"name": "pull-availability",
              "sli": {"kind": "probe_success", "probe": "pull"}, "objective": 99.9}],
}


class _Clock:
    now = START

    def __call__(self) -> float:
        return self.now


def test_the_review_from_the_store_counts_what_the_engine_counted(tmp_path: Path) -> None:
    settings = Settings.model_validate(CONFIG)
    clock = _Clock()
    state = tmp_path / "state"
    engine = SLIEngine(settings.slo_targets(), state, clock=clock)
    engine.open()
    bad = total = 0
    at = START + 30  # inside each minute, so no run sits on an hour's edge
    while at < END:
        clock.now = at
        failed = OUTAGE[0] < at <= OUTAGE[1]
        engine.observe(Observation(
            region="r", operation="pull", source="probe", success=not failed,
            reason=Reason.TIMEOUT if failed else None, duration_seconds=0.1, time=at))
        bad += failed
        total += 1
        at += 60
    engine.flush()
    config = tmp_path / "regions.yaml"
    config.write_text(yaml.safe_dump(CONFIG))
    try:
        # The engine still holds the store (a running exporter): the report only reads.
        done = subprocess.run(
            [sys.executable, "-m", "registry_slo", "report", "--config", str(config),
             "--state-dir", str(state), "--from", "2026-11-10", "--to", "2026-11-17",
             "--previous", "none", "--out", str(tmp_path / "review")],
            capture_output=True, text=True, timeout=120)
    finally:
        engine.close()
    assert done.returncode == 0, done.stderr
    document = json.loads((tmp_path / "review" / "report.json").read_text())
    (result,) = document["slos"]
    assert (result["bad"], result["total"]) == (bad, total) == (120, 7 * 1440)
    assert result["attainment"] == 1 - bad / total
    assert result["consumed"] == bad / (0.001 * total)
    assert result["status"] == "missed"
    assert result["coverage"] == 1.0
    (incident,) = result["incidents"]
    assert incident["severity"] == "page"
    assert incident["source"] == "recomputed"
    # Hourly resolution: the outage's two hours, give or take the short windows' hour.
    assert OUTAGE[0] - 3600 <= incident["start"] <= OUTAGE[0]
    assert incident["end"] >= OUTAGE[1]
    assert incident["bad"] == bad
    assert "SLO store" in document["origin"]
    assert document["health"] == []
    assert "hourly" in (tmp_path / "review" / "report.md").read_text()


def test_a_directory_without_a_store_is_a_clear_error(tmp_path: Path) -> None:
    config = tmp_path / "regions.yaml"
    config.write_text(yaml.safe_dump(CONFIG))
    done = subprocess.run(
        [sys.executable, "-m", "registry_slo", "report", "--config", str(config),
         "--state-dir", str(tmp_path), "--last", "7d"],
        capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert "no SLO store" in done.stderr
    assert "Traceback" not in done.stderr
