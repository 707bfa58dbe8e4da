"""The exporter's own burn rate agrees with Prometheus' on the same data.

A real registry behind a fault proxy (region ``flaky``) and the same registry directly
(``steady``); ``registry-slo serve`` probes both every second; a real Prometheus scrapes
it every second and evaluates the rules ``registry-slo generate`` writes for the same
SLOs, every second. The proxy answers 503 for 20 s in the middle, so the error ratio
climbs and falls.

The same for a traffic SLI: the exporter reads the registry's own log, where a client
pulls a manifest ten times a second, and asks for missing tags (404) during those 20 s;
the SLO ``missing-manifests`` counts ``not_found`` against it.

Shortened intervals, as the issue allows: probes every 1 s (example: 30 s), scrapes and
rule evaluations every 1 s (the generated promtool tests assume 30 s and 1 m). The rules
are the generated ones, unchanged. The whole run stays under 5 minutes, so every event
is inside both the 5m window and the period.

What "agree" means: Prometheus' recorded ``slo:current_burn_rate:ratio`` at evaluation
time T must be what the exporter reported (``/api/v1/slo``, polled every 0.25 s) for the
events Prometheus can have seen: those up to its last scrape before T (at most one scrape
interval before T), counted from its first scrape of the series (within one scrape
interval of the exporter's first events), with rate()'s extrapolation at the start
(at most 1.1 scrape intervals over the sampled interval). Outside that, the test fails.
"""

from __future__ import annotations

import math
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from harness import FaultMode, push_image, require_binary
from harness.prometheus import LocalPrometheus, scrape_job

from registry_slo.config import load_config
from registry_slo.devenv import LocalRegistry, free_port
from registry_slo.generate import generate

SCRAPE = 1.0
OBJECTIVE = 99.0
BUDGET = 0.01
PHASES = ((FaultMode.PASSTHROUGH, 20.0), (FaultMode.STATUS, 20.0), (FaultMode.PASSTHROUGH, 12.0))
TARGETS = (("pull-availability", "flaky"), ("pull-availability", "steady"),
           ("auth-success", "flaky"), ("auth-success", "steady"),
           ("missing-manifests", "steady"))
OUTAGES = {("pull-availability", "flaky"), ("auth-success", "flaky"),
           ("missing-manifests", "steady")}
"""The targets whose error ratio climbs in the middle phase."""
FIRST_SERIES = {
    "pull-availability": 'registry_slo_probe_requests_total{{region="{region}",probe="pull"}}',
    "auth-success": 'registry_slo_probe_requests_total{{region="{region}",probe="auth"}}',
    "missing-manifests": 'registry_slo_registry_requests_total{{region="{region}",'
                         'source="steady-log",operation="pull_manifest",code="200"}}',
}


class ManifestPulls:
    """A client pulling a manifest ten times a second; a missing one while ``missing``."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.missing = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="manifest-pulls", daemon=True)

    def _run(self) -> None:
        accept = {"Accept": "application/vnd.oci.image.manifest.v1+json"}
        with httpx.Client(trust_env=False, timeout=5) as client:
            push_image(client, self.url, "team/app", "v1")
            # One 404 before the measured phases: its requests series (code="404") is
            # then born before them. Prometheus' rate() never sees a series' first
            # increment; the exporter creates the SLI's failure series at zero itself.
            client.get(f"{self.url}/v2/team/app/manifests/missing", headers=accept)
            while not self._stop.wait(0.1):
                tag = "missing" if self.missing.is_set() else "v1"
                client.get(f"{self.url}/v2/team/app/manifests/{tag}", headers=accept)

    def __enter__(self) -> ManifestPulls:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)


@dataclass(frozen=True)
class Reading:
    """The exporter's counts of one (SLO, region) at one moment."""

    at: float
    bad: float
    total: float
    period_bad: float
    period_total: float
    burn: float | None


def readings_of(api: dict[str, Any], slo: str, region: str) -> Reading:
    (entry,) = [s for s in api["slos"] if s["slo"] == slo and s["region"] == region]
    five, period = entry["windows"][0], entry["windows"][-1]
    assert five["window"] == "5m" and period["window"] == entry["period"]
    if five["events"]:  # the engine's own burn rate is its ratio over the budget
        assert math.isclose(entry["current_burn_rate"], five["bad_events"] / five["events"]
                            / BUDGET, rel_tol=1e-9)
    return Reading(entry["evaluated_at"], five["bad_events"], five["events"],
                   period["bad_events"], period["events"], entry["current_burn_rate"])


@pytest.fixture
def stack(tmp_path: Path, registry: LocalRegistry, fault_proxy: Any) -> Iterator[Any]:
    require_binary("prometheus")
    proxy = fault_proxy(registry)
    port = free_port()
    probe = {"interval": "1s", "timeout": "1s", "enabled": ["pull", "auth"],
             "blob_size": "4KiB"}
    config = {
        "listen": f"127.0.0.1:{port}",
        "log_format": "json",
        "state_dir": str(tmp_path / "state"),
        "regions": [
            {"name": "flaky", "url": proxy.url, "probe": probe},
            {"name": "steady", "url": registry.url, "probe": probe},
        ],
        "slos": [
            {"name": "pull-availability", "sli": {"kind": "probe_success", "probe": "pull"},
             "objective": OBJECTIVE},
            {"name": "auth-success", "sli": {"kind": "auth_success"},
             "objective": OBJECTIVE},
            {"name": "missing-manifests", "objective": OBJECTIVE,
             "sli": {"kind": "traffic_success", "operations": ["pull_manifest"],
                     "errors": ["not_found"]}},
        ],
        "ingest": {
            "checkpoint_dir": str(tmp_path / "checkpoints"),
            "poll_interval": "200ms",
            "logs": [{"name": "steady-log", "region": "steady", "format": "distribution",
                      "paths": [str(registry.log_path)], "read_from": "end"}],
        },
    }
    path = tmp_path / "regions.yaml"
    path.write_text(yaml.safe_dump(config))
    out = tmp_path / "alerts"
    generate(load_config(path), out)
    # Prometheus first, so that its first scrape sees the counters at (or near) zero.
    with LocalPrometheus(
        scrape_configs=[scrape_job("registry-slo", [f"127.0.0.1:{port}"])],
        rule_files=sorted((out / "rules").glob("slo-*.yml")),
        scrape_interval=SCRAPE,
        evaluation_interval=SCRAPE,
    ) as prometheus:
        log = tmp_path / "exporter.log"
        with log.open("wb") as stderr:
            proc = subprocess.Popen(
                [sys.executable, "-m", "registry_slo", "serve", "--config", str(path)],
                stderr=stderr, stdout=subprocess.DEVNULL)
        try:
            prometheus.wait_for_targets(timeout=30)
            with ManifestPulls(registry.url) as pulls:
                yield proxy, pulls, f"http://127.0.0.1:{port}", prometheus, log
        finally:
            proc.terminate()
            proc.wait(timeout=15)


def raw_samples(prometheus: LocalPrometheus, selector: str) -> list[tuple[float, float]]:
    data = prometheus.api("query", {"query": f"{selector}[5m]"}, what=selector)
    assert data["resultType"] == "matrix" and len(data["result"]) == 1, (selector, data)
    return [(float(t), float(v)) for t, v in data["result"][0]["values"]]


def candidates(readings: list[Reading], first: float, end: float,
               period: bool) -> list[float]:
    """Error ratios of the events Prometheus can have counted at an evaluation at ``end``
    (see the module docstring)."""
    zero = Reading(-math.inf, 0, 0, 0, 0, None)
    starts = [zero] + [
        r for r in readings if first - SCRAPE - 0.5 <= r.at <= first + SCRAPE + 0.5
    ]
    ends = [r for r in readings if end - SCRAPE - 0.5 <= r.at <= end + 0.5]
    assert ends, f"no exporter reading near {end}"
    out = []
    for s in starts:
        for e in ends:
            bad = (e.period_bad - s.period_bad) if period else (e.bad - s.bad)
            total = (e.period_total - s.period_total) if period else (e.total - s.total)
            if total > 0:
                out.append(bad / total)
    return out


def test_exporter_and_prometheus_agree_on_burn_rates(stack: Any) -> None:
    proxy, pulls, base, prometheus, log = stack
    readings: dict[tuple[str, str], list[Reading]] = {}
    with httpx.Client(timeout=5) as client:
        for mode, seconds in PHASES:
            if mode is FaultMode.STATUS:
                proxy.set_mode(mode, status=503)
                pulls.missing.set()
            else:
                proxy.set_mode(mode)
                pulls.missing.clear()
            deadline = time.monotonic() + seconds
            while time.monotonic() < deadline:
                api = client.get(f"{base}/api/v1/slo").json()
                for slo, region in TARGETS:
                    readings.setdefault((slo, region), []).append(
                        readings_of(api, slo, region))
                time.sleep(0.25)
    time.sleep(2 * SCRAPE)  # the last evaluations
    assert log.exists()

    checked = 0
    for (slo, region), mine in readings.items():
        first = raw_samples(prometheus, FIRST_SERIES[slo].format(region=region))[0][0]
        sloth_id = f"{region}-{slo}"
        for record, period in (("slo:current_burn_rate:ratio", False),
                               ("slo:period_burn_rate:ratio", True)):
            samples = raw_samples(prometheus, f'{record}{{sloth_id="{sloth_id}"}}')
            seen = []
            for at, burn in samples:
                sampled = at - first
                if sampled < 5:
                    continue  # a handful of events: one more or less is no signal
                if at > mine[-1].at - 0.5:
                    continue  # after the last reading: nothing to compare with
                ratios = candidates(mine, first, at, period)
                slack = 1.1 * SCRAPE / sampled
                low, high = min(ratios) * (1 - slack), max(ratios) * (1 + slack)
                ratio = burn * BUDGET
                assert low - 1e-9 <= ratio <= high + 1e-9, (
                    f"{record} {sloth_id} at {at:.3f}: Prometheus {ratio:.4f}, the exporter "
                    f"{min(ratios):.4f}..{max(ratios):.4f} (±{slack:.1%})"
                )
                seen.append(ratio)
                checked += 1
            assert len(seen) >= 30, (record, sloth_id, len(seen))
            if (slo, region) in OUTAGES:  # the outage was seen, and the recovery
                assert max(seen) > 0.2, (record, sloth_id, max(seen))
                assert seen[-1] < max(seen)
            else:
                assert max(seen) == 0, (record, sloth_id)
    assert checked >= 250
    # Prometheus also scraped the exporter's own gauges.
    gauges = prometheus.query(
        'registry_slo_slo_burn_rate{window="5m",slo="pull-availability",region="flaky"}')
    assert len(gauges) == 1
