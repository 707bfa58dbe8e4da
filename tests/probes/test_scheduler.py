"""Scheduling: one run in flight per probe, black-holed regions don't delay others."""

from __future__ import annotations

import asyncio

from conftest import FaultProxyFactory
from harness import FaultMode

from registry_slo.devenv import LocalRegistry
from registry_slo.observation import Observation
from registry_slo.oci import Reason
from registry_slo.probes import AuthProbe, ProbeScheduler, PullProbe, ScheduledProbe
from registry_slo.telemetry.metrics import ExporterMetrics

from .conftest import region


def sample(metrics: ExporterMetrics, name: str, **labels: str) -> float:
    value = metrics.registry.get_sample_value(name, labels)
    return 0.0 if value is None else value


async def test_blackholed_region_does_not_delay_healthy_one(
    registry: LocalRegistry, fault_proxy: FaultProxyFactory
) -> None:
    proxy = fault_proxy(registry)
    proxy.set_mode(FaultMode.STALL)
    good, bad = region(registry.url, name="good"), region(proxy.url, name="bad")
    seen: list[Observation] = []
    metrics = ExporterMetrics()
    scheduler = ProbeScheduler(
        [
            ScheduledProbe(PullProbe(good), interval=1.0, jitter=0.0, timeout=0.9),
            ScheduledProbe(AuthProbe(good), interval=1.0, jitter=0.0, timeout=0.9),
            ScheduledProbe(PullProbe(bad), interval=1.0, jitter=0.0, timeout=0.9),
            ScheduledProbe(AuthProbe(bad), interval=1.0, jitter=0.0, timeout=0.9),
        ],
        metrics.probes,
        sinks=[seen.append],
        first_run_within=0.1,
    )
    scheduler.start()
    await asyncio.sleep(5.3)
    scheduler.shutdown()
    await good.aclose()
    await bad.aclose()
    good_runs = [o for o in seen if o.region == "good"]
    bad_runs = [o for o in seen if o.region == "bad"]
    assert all(o.success for o in good_runs), [o.detail for o in good_runs]
    assert len(good_runs) >= 2 * 4, len(good_runs)  # ~5 runs of each of 2 probes
    assert bad_runs and all(o.reason is Reason.TIMEOUT for o in bad_runs)
    assert sample(metrics, "registry_slo_probe_success", region="good", probe="pull") == 1
    assert sample(metrics, "registry_slo_probe_success", region="bad", probe="pull") == 0
    assert sample(metrics, "registry_slo_probe_failures_total",
                  region="bad", probe="auth", reason="timeout") >= 3
    assert scheduler.ready
    # Schedule delays stay small although half the probes hang until their timeout.
    count = sample(metrics, "registry_slo_probe_schedule_delay_seconds_count")
    late = count - sample(metrics, "registry_slo_probe_schedule_delay_seconds_bucket", le="0.25")
    assert count >= 16 and late == 0


async def test_overrunning_probe_is_skipped_not_stacked(
    registry: LocalRegistry, fault_proxy: FaultProxyFactory
) -> None:
    proxy = fault_proxy(registry)
    proxy.set_mode(FaultMode.STALL)
    bad = region(proxy.url, name="bad")
    metrics = ExporterMetrics()
    # A timeout longer than the interval (not allowed by config, possible by API).
    scheduled = ScheduledProbe(AuthProbe(bad), interval=1.0, jitter=0.0, timeout=2.5)
    scheduler = ProbeScheduler([scheduled], metrics.probes, first_run_within=0.05)
    scheduler.start()
    await asyncio.sleep(4.0)
    assert sample(metrics, "registry_slo_probe_runs_in_flight") <= 1
    scheduler.shutdown()
    await bad.aclose()
    assert scheduled.runs == 1
    assert sample(metrics, "registry_slo_probe_skipped_total", region="bad", probe="auth") >= 1


async def test_failures_logged_on_change_and_every_nth_repeat(stopped_registry_url: str) -> None:
    from structlog.testing import capture_logs

    from registry_slo.probes.scheduler import REPEAT_EVERY

    state = region(stopped_registry_url, name="down")
    scheduled = ScheduledProbe(AuthProbe(state), interval=1.0, jitter=0.0, timeout=1.0)
    scheduler = ProbeScheduler([scheduled], ExporterMetrics().probes)
    with capture_logs() as logs:
        for _ in range(REPEAT_EVERY + 2):
            await scheduler.run_once(scheduled)
    await state.aclose()
    events = [e["event"] for e in logs if e["log_level"] == "warning"]
    assert events == ["probe failed", "probe still failing"]
    assert sum(e["event"] == "probe failed again" for e in logs) == REPEAT_EVERY
