"""Replication lag resolution: the exported lag against the true age of the newest
heartbeat on a mirror kept in sync by a real `skopeo sync` loop of known period.

The truth is read by the benchmark itself: every 0.1 s it fetches the heartbeat the mirror
holds and computes ``now - its write time``; the exporter's figure is
``registry_slo_replication_lag_seconds`` at the same instant. Two figures:

- detection delay: from the moment the mirror shows a new heartbeat (first seen by the
  benchmark) until the exported lag reflects it. The exporter polls once per heartbeat
  interval, so the goal is at most the interval + 0.5 s.
- instantaneous error: exported minus true lag at each sample. A sync brings heartbeats in
  jumps of up to one sync period, so during the detection delay the error is as large as
  that jump; the time-weighted share of samples within the goal is reported too.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx

from bench._util import machine, summary, write_result
from registry_slo.config import Settings
from registry_slo.devenv import LocalRegistry
from registry_slo.devenv.mirror import SkopeoSyncLoop
from registry_slo.probes import ProbeScheduler, build_probes, build_regions
from registry_slo.probes.heartbeat import read_heartbeat
from registry_slo.telemetry.metrics import ExporterMetrics

TAG = "registry-slo-heartbeat"


async def _measure(primary: LocalRegistry, mirror: LocalRegistry, period: float,
                   interval: float, duration: float) -> dict[str, Any]:
    settings = Settings.model_validate({
        "regions": [
            {"name": "primary", "url": primary.url, "probe": {"enabled": ["auth"]}},
            {"name": "mirror", "url": mirror.url, "replicates_from": "primary",
             "probe": {"enabled": ["auth"]}},
        ],
        "replication": {"heartbeat_interval": f"{interval}s",
                        "timeout": f"{min(interval, 5.0)}s", "tag": TAG},
    })
    states = build_regions(settings)
    metrics = ExporterMetrics()
    probes, trackers = build_probes(settings, states)
    for tracker in trackers:
        metrics.regions.track_replication(tracker.region, tracker.source_region, tracker.lag)
    scheduler = ProbeScheduler(probes, metrics.probes, first_run_within=0.1)
    loop = SkopeoSyncLoop(primary, mirror, "registry-slo/probe", TAG, period)
    scheduler.start()
    loop.start()
    errors: list[float] = []
    truths: list[float] = []
    delays: list[float] = []
    read_errors = 0
    try:
        async with httpx.AsyncClient() as http:
            deadline = time.monotonic() + 60
            while trackers[0].newest is None:
                if time.monotonic() > deadline:
                    raise RuntimeError("no heartbeat reached the mirror within 60 s")
                await asyncio.sleep(0.2)
            await asyncio.sleep(period + interval)  # past the first partial period
            end = time.monotonic() + duration
            appeared: dict[float, float] = {}  # heartbeat write time -> first seen on mirror
            detected: dict[float, float] = {}  # heartbeat write time -> first exported
            while time.monotonic() < end:
                response = await http.get(
                    f"{mirror.url}/v2/registry-slo/probe/manifests/{TAG}",
                    headers={"Accept": "application/vnd.oci.image.manifest.v1+json"})
                now = time.time()
                newest = trackers[0].newest
                if newest is not None and newest not in detected:
                    detected[newest] = now
                if response.status_code != 200:
                    read_errors += 1  # e.g. a 500 while the sync rewrites the tag
                    await asyncio.sleep(0.1)
                    continue
                written, _ = read_heartbeat(response.json())
                appeared.setdefault(written, now)
                exported = metrics.registry.get_sample_value(
                    "registry_slo_replication_lag_seconds",
                    {"region": "mirror", "source_region": "primary"})
                assert exported is not None
                truth = now - written
                truths.append(truth)
                errors.append(exported - truth)
                await asyncio.sleep(0.1)
            delays = [detected[w] - t for w, t in appeared.items() if w in detected]
    finally:
        loop.stop()
        scheduler.shutdown()
        for state in states.values():
            await state.aclose()
    absolute = [abs(e) for e in errors]
    labels = {"region": "mirror", "probe": "replication"}
    reads = metrics.registry.get_sample_value("registry_slo_probe_requests_total", labels) or 0
    failed = sum(
        s.value for family in metrics.registry.collect() for s in family.samples
        if s.name == "registry_slo_probe_failures_total"
        and s.labels.get("region") == "mirror" and s.labels.get("probe") == "replication"
    )
    return {
        "params": {"sync_period_s": period, "heartbeat_interval_s": interval,
                   "duration_s": duration, "samples": len(errors)},
        "true_lag_s": summary(truths),
        "error_s": summary(errors),
        "abs_error_s": summary(absolute),
        "share_within_goal": sum(a <= interval + 0.5 for a in absolute) / len(absolute),
        "detection_delay_s": summary(delays),
        "goal_s": interval + 0.5,
        "goal_met": max(delays) <= interval + 0.5,
        "benchmark_read_errors": read_errors,
        "heartbeat_reads": reads,
        "heartbeat_read_failures": failed,
        "syncs": loop.syncs,
        "sync_failures": loop.failures,
    }


def run(period: float = 5.0, interval: float = 2.0, duration: float = 60.0) -> dict[str, Any]:
    """Run the lag-resolution benchmark and write its JSON result."""
    with LocalRegistry() as primary, LocalRegistry() as mirror:
        result = asyncio.run(_measure(primary, mirror, period, interval, duration))
    result["machine"] = machine()
    write_result("lag", result)
    return result


def table(r: dict[str, Any]) -> str:
    """Markdown for the lag-resolution result."""
    p, e, t, d = r["params"], r["abs_error_s"], r["true_lag_s"], r["detection_delay_s"]
    return "\n".join([
        f"Replication lag resolution: skopeo sync every {p['sync_period_s']:g} s, heartbeat "
        f"every {p['heartbeat_interval_s']:g} s, {p['samples']} samples over "
        f"{p['duration_s']:g} s ({r['machine']['date']})",
        "",
        "| figure | value | goal |",
        "| --- | ---: | --- |",
        f"| true lag on the mirror, median / max | {t['median']:.2f} / {t['max']:.2f} s | |",
        f"| detection delay of a new heartbeat (n={d['n']}), median / p99 / max | "
        f"{d['median']:.2f} / {d['p99']:.2f} / {d['max']:.2f} s | <= {r['goal_s']:g} s "
        f"({'met' if r['goal_met'] else 'MISSED'}) |",
        f"| abs error of the exported lag, median / p99 / max | {e['median']:.2f} / "
        f"{e['p99']:.2f} / {e['max']:.2f} s | |",
        f"| share of samples with abs error <= {r['goal_s']:g} s | "
        f"{100 * r['share_within_goal']:.1f} % | |",
        f"| syncs / failed syncs | {r['syncs']} / {r['sync_failures']} | |",
        f"| benchmark's own mirror reads that failed | {r['benchmark_read_errors']} | |",
        f"| heartbeat reads / failed reads | {r['heartbeat_reads']:.0f} / "
        f"{r['heartbeat_read_failures']:.0f} | |",
    ])


if __name__ == "__main__":
    outcome = run()
    print(table(outcome))
