"""The Debug dashboard: per-phase timings with exemplar links to traces, pushes per
repository, replication and cache detail, garbage collection (regions whose collector's
output is read), ingest and exporter health."""

from __future__ import annotations

from grafana_foundation_sdk.models import dashboard as models
from grafana_foundation_sdk.models import units

from registry_slo.generate.dashboards._context import DashboardContext
from registry_slo.generate.dashboards._kit import (
    Board,
    DashboardRef,
    Step,
    Target,
    stat_panel,
    table_panel,
    time_series,
)
from registry_slo.generate.dashboards._promql import (
    REGION,
    quantile,
    sel,
    variables,
)
from registry_slo.vocabulary import (
    GC_BLOBS_DELETED,
    GC_LAST_SUCCESS,
    GC_RECLAIMED,
    GC_RUNS,
    PROBE_DURATION,
    REPLICATION_LAG,
)

__all__ = ["DEBUG", "build"]

DEBUG = DashboardRef("registry-slo-debug", "Registry SLOs: debug")

_PHASE = "registry_slo_probe_phase_duration_seconds"
_REPO = "registry_slo_registry_repository_requests_total"


def _probe_row(board: Board) -> None:
    board.row("Probe runs: timings and traces")
    board.add(
        time_series(
            "Probe duration p95 by region and probe",
            "95th percentile duration of every probe (push, pull, auth, heartbeat, "
            "replication, cache). Exemplars are individual runs: each links to its trace "
            "(trace_id) when the exporter sends traces.",
            [Target(quantile(0.95, PROBE_DURATION.bucket + sel(), "region, probe"),
                    "{{region}} {{probe}}", exemplar=True)],
            units.Seconds,
        ),
        time_series(
            "Mean time per phase",
            "Average exclusive time per phase (auth, upload, manifest, download) of each "
            "probe run: the phases add up to the run, so the stack is the run's timeline.",
            [Target(f"sum by (region, probe, phase) (rate({_PHASE}_sum{sel()}"
                    f"[$__rate_interval]))\n/\nsum by (region, probe, phase) "
                    f"(rate({_PHASE}_count{sel()}[$__rate_interval]))",
                    "{{region}} {{probe}} {{phase}}")],
            units.Seconds, stacked=True,
        ),
        time_series(
            "Phase duration p95",
            "95th percentile of each phase's exclusive time, per region and probe: which "
            "step of a slow run is slow.",
            [Target(quantile(0.95, _PHASE + "_bucket" + sel(), "region, probe, phase"),
                    "{{region}} {{probe}} {{phase}}")],
            units.Seconds,
        ),
        time_series(
            "Last run duration",
            "Duration of each probe's most recent run (updated when a run ends): single "
            "runs, without histogram smoothing.",
            [Target(f"max by (region, probe) (registry_slo_probe_last_duration_seconds"
                    f"{sel()})", "{{region}} {{probe}}")],
            units.Seconds,
        ),
    )


def _push_row(board: Board) -> None:
    board.row("Pushes per repository")
    push = sel('probe="push"')
    manifests = sel('operation="push_manifest"')
    manifest_ok = sel('operation="push_manifest"', 'outcome="success"')
    board.add(
        time_series(
            "Probe push latency p50 and p95",
            "Duration of the push probe (a fresh layer, config and manifest into the probe "
            "repository) per region; exemplars link to traces.",
            [Target(quantile(0.5, PROBE_DURATION.bucket + push, "region"), "{{region}} p50",
                    exemplar=True),
             Target(quantile(0.95, PROBE_DURATION.bucket + push, "region"), "{{region}} p95",
                    exemplar=True)],
            units.Seconds, size=(8, 8),
        ),
        time_series(
            "Client manifest pushes per repository (registry logs)",
            "Manifest pushes per second by repository and outcome, from the registries' "
            "logs. Repositories outside the configured top-N or allow-list are 'other'.",
            [Target(f"sum by (region, repository, outcome) (rate({_REPO}"
                    f"{manifests}[$__rate_interval]))",
                    "{{region}} {{repository}} {{outcome}}")],
            units.RequestsPerSecond, size=(8, 8),
        ),
        time_series(
            "Client push latency p95 by operation (registry logs)",
            "95th percentile duration of push requests (blob uploads, manifest puts) as "
            "the registries logged them, by region and operation. Per-repository "
            "durations are not exported (bounded labels); see the push rate per "
            "repository.",
            [Target(quantile(0.95, "registry_slo_registry_request_duration_seconds_bucket"
                             + sel('operation=~"push_.*"'), "region, operation"),
                    "{{region}} {{operation}}")],
            units.Seconds, size=(8, 8),
        ),
    )
    board.add(
        table_panel(
            "Since the last successful push per repository (registry logs)",
            "Seconds since a client last pushed a manifest successfully to each "
            "repository, within the dashboard's time range (1-minute resolution; a "
            "repository's very first push is not visible to increase()).",
            [Target("time() - max by (region, repository) (max_over_time(\n"
                    f"  timestamp(increase({_REPO}{manifest_ok}[2m]) > 0)[$__range:1m]\n))",
                    instant=True, table=True)],
            units.Seconds, size=(12, 7), decimals=0,
        ),
        table_panel(
            "Since the last successful probe push",
            "Seconds since each region's push probe last succeeded within the dashboard's "
            "time range (sampled at the rule evaluation interval).",
            [Target("time() - max by (region) (max_over_time(\n"
                    f"  timestamp(registry_slo_probe_success{push} == 1)[$__range:]\n))",
                    instant=True, table=True)],
            units.Seconds, size=(12, 7), decimals=0,
        ),
    )


def _replication_row(board: Board, ctx: DashboardContext) -> None:
    board.row("Replication and cache")
    lag_steps: list[Step] = [(None, "green")]
    lag = ctx.slo_for("replication_lag")
    if lag is not None and lag.threshold is not None:
        lag_steps.append((lag.threshold, "yellow"))
    lag_steps.append((ctx.lag_alert_threshold, "red"))
    board.add(
        time_series(
            "Replication lag and lag at first sight (p95)",
            "Lag: now minus the newest heartbeat visible on each mirror. First sight: how "
            "old each new heartbeat was when the mirror first showed it (p95), which "
            "includes up to one heartbeat interval of polling. Dashed lines: the "
            "replication SLO threshold and the RegistryReplicationLagHigh threshold.",
            [Target(f"max by (region, source_region) ({REPLICATION_LAG.name}{sel()})",
                    "{{region}} ← {{source_region}} now"),
             Target(quantile(0.95, "registry_slo_replication_lag_at_first_sight_seconds_"
                             "bucket" + sel(), "region, source_region"),
                    "{{region}} ← {{source_region}} first sight p95")],
            units.Seconds, size=(8, 8), steps=lag_steps,
        ),
        time_series(
            "Cache hit ratio",
            "Share of a pull-through cache's requests served from the cache, by kind "
            "(blob, manifest), from the cache's own counters. Distribution 2.8 counts blobs "
            "fetched from upstream as hits: its manifest ratio is the reliable one.",
            [Target(f"sum by (region, kind) (rate(registry_slo_cache_hits_total{sel()}"
                    "[$__rate_interval]))\n/\nsum by (region, kind) "
                    f"(rate(registry_slo_cache_requests_total{sel()}[$__rate_interval]))",
                    "{{region}} {{kind}}")],
            units.PercentUnit, size=(8, 8), decimals=1,
        ),
        time_series(
            "Cold pulls through the cache and clock offsets",
            "Cold pull duration p95 (the cache probe: a fresh image pulled through the "
            "cache, which must fetch it upstream; exemplars link to traces) and each "
            "registry's clock offset from the exporter (lag figures are only as good as "
            "the clocks).",
            [Target(quantile(0.95, PROBE_DURATION.bucket + sel('probe="cache"'), "region"),
                    "{{region}} cold pull p95", exemplar=True),
             Target(f"max by (region) (registry_slo_registry_clock_offset_seconds{sel()})",
                    "{{region}} clock offset")],
            units.Seconds, size=(8, 8),
        ),
    )


def _gc_row(board: Board, ctx: DashboardContext) -> None:
    """Garbage collection (M8): the runs the ``distribution-gc`` sources read."""
    board.row("Garbage collection")
    rate = "[$__rate_interval]"
    board.add(
        table_panel(
            "Since the last successful garbage collection",
            "Seconds since each garbage collector's last successful (not dry) run "
            "completed, per region and source; before any run was read, since the exporter "
            "began reading its output. Red: RegistryGarbageCollectionOverdue's interval.",
            [Target(f"time() - max by (region, source) ({GC_LAST_SUCCESS.name}{sel()})",
                    instant=True, table=True)],
            units.Seconds, size=(8, 8), decimals=0,
            steps=[(None, "green"), (ctx.gc_overdue_after, "red")],
        ),
        time_series(
            "Garbage collection runs and blobs deleted",
            "Runs completed by result (ok, dry_run, failed) and blobs deleted, per "
            "region, from the collectors' output.",
            [Target(f"sum by (region, result) (increase({GC_RUNS.total}{sel()}{rate}))",
                    "{{region}} runs {{result}}"),
             Target(f"sum by (region) (increase({GC_BLOBS_DELETED.total}{sel()}{rate}))",
                    "{{region}} blobs deleted")],
            units.Short, size=(8, 8), decimals=0,
        ),
        time_series(
            "Bytes reclaimed by the last garbage collection",
            "The storage filesystem's bytes used before the last successful run's first "
            "deletion minus after its last (regions with an ingest.filesystems source); "
            "no value when it could not be read cleanly (the exporter was not reading the "
            "filesystem while the run went on).",
            [Target(f"max by (region, source) ({GC_RECLAIMED.name}{sel()})",
                    "{{region}} {{source}}")],
            units.BytesIEC, size=(8, 8),
        ),
    )


def _ingest_row(board: Board) -> None:
    board.row("Ingest and exporter health")
    rate = "[$__rate_interval]"
    board.add(
        time_series(
            "Lines read by ingest source",
            "Records (log lines, notification events) read per second by each ingest "
            "source, and the share that became observations. Ingest series carry the "
            "source label, not the region.",
            [Target(f"sum by (source) (rate(registry_slo_ingest_lines_total{rate}))",
                    "{{source}} lines"),
             Target(f"sum by (source) (rate(registry_slo_ingest_observations_total{rate}))",
                    "{{source}} observations")],
            units.OpsPerSecond, size=(8, 8),
        ),
        time_series(
            "Ignored and rejected lines by reason",
            "Lines per second an ingest source ignored (not an operation, probe traffic, "
            "auth challenge …) or rejected (malformed, too long …). reason=none: no "
            "rejects.",
            [Target("sum by (source, reason) "
                    f"(rate(registry_slo_ingest_ignored_total{rate}))", "ignored {{source}} "
                    "{{reason}}"),
             Target(f"sum by (source, reason) (rate(registry_slo_ingest_rejected_total{rate}))"
                    "\nor\nlabel_replace(0 * sum by (source) (rate(registry_slo_ingest_lines_"
                    f'total{rate})), "reason", "none", "", "")',
                    "rejected {{source}} {{reason}}")],
            units.OpsPerSecond, size=(8, 8),
        ),
        time_series(
            "Ingest lag",
            "Bytes written to each source's files and not read yet, and seconds since the "
            "source last polled: both grow when ingest falls behind or stalls.",
            [Target("max by (source) (registry_slo_ingest_lag_bytes)", "{{source}} unread"),
             Target("time() - max by (source) (registry_slo_ingest_last_poll_timestamp_"
                    "seconds)", "{{source}} seconds since poll")],
            units.BytesIEC, size=(8, 8),
        ),
    )
    board.add(
        time_series(
            "Spans by outcome",
            "Probe trace spans per second: exported, failed (collector unreachable or "
            "refused) or dropped (queue full); present when traces are on.",
            [Target(f"sum by (outcome) (rate(registry_slo_otel_spans_total{rate}))",
                    "{{outcome}}")],
            units.OpsPerSecond, size=(8, 7),
        ),
        time_series(
            "Probe scheduling",
            "How late probe runs start (p95 of registry_slo_probe_schedule_delay_seconds) "
            "and runs skipped because the previous one was still going, per region and "
            "probe.",
            [Target(quantile(0.95, "registry_slo_probe_schedule_delay_seconds_bucket", "job"),
                    "start delay p95"),
             Target(f"sum by (region, probe) (increase(registry_slo_probe_skipped_total"
                    f"{{{REGION}}}{rate}))", "{{region}} {{probe}} skipped")],
            units.Seconds, size=(8, 7),
        ),
        stat_panel(
            "Exporter internal errors",
            "Unexpected exceptions inside the exporter over the time range, by component "
            "(a bug: please report it with the exporter's log).",
            [Target("sum(increase(registry_slo_internal_errors_total[$__range]))\n"
                    "or vector(0)", instant=True)],
            units.Short, size=(8, 7), decimals=0, steps=[(None, "green"), (1.0, "red")],
        ),
    )


def build(ctx: DashboardContext, executive: DashboardRef, oncall: DashboardRef
          ) -> models.Dashboard:
    """The Debug dashboard for the configuration ``ctx``."""
    board = Board(
        DEBUG.uid, DEBUG.title,
        "For root cause analysis: per-phase timings with exemplar links to traces, "
        "pushes per repository, replication and cache detail, ingest and exporter health.",
        [executive, oncall], variables(),
    )
    _probe_row(board)
    _push_row(board)
    _replication_row(board, ctx)
    if ctx.gc:
        _gc_row(board, ctx)
    _ingest_row(board)
    return board.build()
