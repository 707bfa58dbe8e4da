"""The On-call dashboard: what is firing and burning now, pull latency, auth and
rate-limit headroom, failure reasons, replication lag and probes that stopped running."""

from __future__ import annotations

from grafana_foundation_sdk.models import dashboard as models
from grafana_foundation_sdk.models import units

from registry_slo._units import human_duration
from registry_slo.generate.dashboards._context import DashboardContext
from registry_slo.generate.dashboards._kit import (
    Board,
    DashboardRef,
    Step,
    Target,
    bar_gauge,
    stat_panel,
    table_panel,
    time_series,
)
from registry_slo.generate.dashboards._promql import (
    REGION,
    budget_burn,
    failure_ratio,
    quantile,
    sel,
    slo_sel,
    variables,
)
from registry_slo.vocabulary import (
    PROBE_DURATION,
    PROBE_FAILURES,
    PROBE_LAST_RUN,
    PROBE_REQUESTS,
    RATE_LIMIT_LIMIT,
    RATE_LIMIT_REMAINING,
    RATE_LIMIT_RESET,
    REPLICATION_LAG,
)

__all__ = ["ONCALL", "build"]

ONCALL = DashboardRef("registry-slo-oncall", "Registry SLOs: on-call")


def _alerts_row(board: Board, ctx: DashboardContext) -> None:
    board.row("Firing alerts and burn rates")
    burn_steps: list[Step] = [(None, "green"), (1.0, "yellow"),
                              (ctx.slow_page_factor, "orange"), (ctx.page_factor, "red")]
    board.add(
        stat_panel(
            "Pages firing",
            "Alerts with severity=page firing now in the selected regions.",
            [Target('count(ALERTS{alertstate="firing",severity="page",' + REGION + "})"
                    "\nor vector(0)", instant=True)],
            units.Short, size=(4, 6), decimals=0, steps=[(None, "green"), (1.0, "red")],
        ),
        stat_panel(
            "Tickets firing",
            "Alerts with severity=ticket firing now in the selected regions.",
            [Target('count(ALERTS{alertstate="firing",severity="ticket",' + REGION + "})"
                    "\nor vector(0)", instant=True)],
            units.Short, size=(4, 6), decimals=0, steps=[(None, "green"), (1.0, "orange")],
        ),
        table_panel(
            "Firing alerts",
            "Every alert firing now in the selected regions, with its severity, SLO and "
            "probe (Prometheus' ALERTS series). The annotations (summary, runbook) are in "
            "Alertmanager and Prometheus' alerts page.",
            [Target("sum by (alertname, severity, region, sloth_slo, probe) "
                    '(ALERTS{alertstate="firing",' + REGION + "})",
                    instant=True, table=True)],
            units.Short, size=(16, 6), decimals=0,
        ),
        time_series(
            "Burn rate by SLO (5m)",
            "Error budget burn rate over the last 5 minutes (slo:current_burn_rate:ratio) "
            "per SLO and region: 1 spends exactly the budget over the SLO period. Dashed "
            f"lines: 1, the 6h page factor {ctx.slow_page_factor:g} and the 1h page factor "
            f"{ctx.page_factor:g} (the lowest of the configured SLOs).",
            [Target(f"slo:current_burn_rate:ratio{slo_sel()}", "{{sloth_slo}} · {{region}}")],
            units.NoUnit, decimals=2, steps=burn_steps,
        ),
        bar_gauge(
            "Burn rate over the page windows",
            "Burn rate over 1h and 6h per SLO and region, the long windows of the page "
            "alerts: a page fires when both the long and its short window exceed the "
            "factor.",
            [Target(budget_burn("1h"), "{{sloth_slo}} · {{region}} · 1h", instant=True),
             Target(budget_burn("6h"), "{{sloth_slo}} · {{region}} · 6h", instant=True)],
            units.NoUnit, decimals=2, steps=burn_steps, min_value=0.0,
        ),
    )


def _latency_row(board: Board, ctx: DashboardContext, debug: DashboardRef) -> None:
    board.row("Latency")
    for probe in ("pull", "push"):
        slo = ctx.slo_for("probe_latency", probe)
        steps: list[Step] | None = None
        line = ""
        if slo is not None and slo.threshold is not None:
            steps = [(None, "green"), (slo.threshold, "red")]
            line = (f" Dashed line: the {slo.name} threshold "
                    f"{human_duration(slo.threshold)}.")
        bucket = PROBE_DURATION.bucket + sel(f'probe="{probe}"')
        board.add(time_series(
            f"{probe.capitalize()} latency p95 and p99 by region",
            f"95th and 99th percentile duration of {probe} probe runs per region (from "
            "registry_slo_probe_duration_seconds). Exemplars link to the run's trace when "
            f"the exporter sends traces.{line}",
            [Target(quantile(0.95, bucket, "region"), "{{region}} p95", exemplar=True),
             Target(quantile(0.99, bucket, "region"), "{{region}} p99", exemplar=True)],
            units.Seconds, steps=steps, links=[debug],
        ))


def _auth_row(board: Board, ctx: DashboardContext) -> None:
    board.row("Authentication")
    slo = ctx.slo_for("auth_success")
    steps: list[Step] | None = None
    line = ""
    if slo is not None:
        steps = [(None, "green"), (slo.budget, "red")]
        line = f" Dashed line: the error budget of {slo.name} ({slo.objective_text})."
    auth = sel('probe="auth"')
    refused = sel('reason=~"auth|denied"')
    board.add(
        time_series(
            "Auth probe failure ratio",
            "Share of token round trips (auth probe runs) that failed, per region." + line,
            [Target(failure_ratio(f"{PROBE_FAILURES.total}{auth}", f"{PROBE_REQUESTS.total}{auth}",
                                  "region"), "{{region}}")],
            units.PercentUnit, size=(9, 7), decimals=2, steps=steps,
        ),
        time_series(
            "Client auth failures (registry logs)",
            "Requests the registries refused for credentials (reason auth: 401, denied: "
            "403) per second, from their logs: spikes mean broken clients, expired "
            "credentials or an attack. reason=none: the source reported no such failure.",
            [Target("sum by (region, reason) (rate(registry_slo_registry_request_failures_"
                    f"total{refused}[$__rate_interval]))\nor\n"
                    'label_replace(0 * sum by (region) (rate(registry_slo_registry_requests_'
                    f'total{{{REGION}}}[$__rate_interval])), "reason", "none", "", "")',
                    "{{region}} {{reason}}")],
            units.RequestsPerSecond, size=(9, 7),
        ),
        stat_panel(
            "Token service status",
            "Last result of each region's auth probe: up when the prober obtained "
            "credentials (a Bearer token from the token service, or Basic/anonymous "
            "access to /v2/).",
            [Target(f"max by (region) (registry_slo_probe_success{auth})", "{{region}}",
                    instant=True)],
            units.NoUnit, size=(6, 7), steps=[(None, "red"), (1.0, "green")],
            mappings=[("1", "up", "green"), ("0", "down", "red")],
        ),
    )
    headroom = ctx.rate_limit_headroom
    board.add(
        bar_gauge(
            "Rate-limit headroom",
            "Share of each rate-limit quota left, as the registries' answers to the probes "
            "state it (RateLimit headers, Docker Hub's ratelimit-*; 0 after a 429). Red: "
            f"under {100 * headroom:g}%, where RegistryRateLimitHeadroomLow opens a ticket; "
            "none left pages (RegistryRateLimitExhausted). Empty: the registry sends no "
            "rate-limit headers.",
            [Target(f"min by (region, policy) (\n  {RATE_LIMIT_REMAINING.name}{sel()}\n  /\n"
                    f"  ({RATE_LIMIT_LIMIT.name}{sel()} > 0)\n)", "{{region}} {{policy}}",
                    instant=True)],
            units.PercentUnit, size=(12, 6), decimals=0, min_value=0.0, max_value=1.0,
            steps=[(None, "red"), (headroom, "green")],
        ),
        time_series(
            "Seconds until the quota resets",
            "Seconds until each rate-limit quota is restored, counting down from the "
            "registry's last statement (RateLimit-Reset, t=, Retry-After on a 429).",
            [Target(f"max by (region, policy) ({RATE_LIMIT_RESET.name}{sel()})",
                    "{{region}} {{policy}}")],
            units.Seconds, size=(12, 6),
        ),
    )


def _failures_row(board: Board, ctx: DashboardContext) -> None:
    board.row("Failures, replication and probe health")
    board.add(
        table_panel(
            "Probe failures by reason",
            "Failed probe runs over the dashboard's time range by region, probe and reason "
            "(timeout, connect, tls, auth, denied, not_found, rate_limited, server_error, "
            "digest_mismatch, protocol). Empty when nothing failed.",
            [Target(f"sum by (region, probe, reason) (increase({PROBE_FAILURES.total}{sel()}"
                    "[$__range])) > 0", instant=True, table=True)],
            units.Short, size=(12, 8), decimals=0,
        ),
        time_series(
            "Client request failures by reason (registry logs)",
            "Failed requests per second by region, operation and reason, as the "
            "registries logged them (all clients, not only probes).",
            [Target("sum by (region, operation, reason) (rate(registry_slo_registry_"
                    f"request_failures_total{sel()}[$__rate_interval]))",
                    "{{region}} {{operation}} {{reason}}")],
            units.RequestsPerSecond, size=(12, 8),
        ),
    )
    lag = ctx.slo_for("replication_lag")
    lag_steps: list[Step] = [(None, "green")]
    if lag is not None and lag.threshold is not None:
        lag_steps.append((lag.threshold, "yellow"))
    lag_steps.append((ctx.lag_alert_threshold, "red"))
    board.add(
        time_series(
            "Replication lag",
            "Seconds since the newest heartbeat visible on each mirror was written on its "
            "source; it keeps growing while replication is stopped. Dashed lines: the "
            "replication SLO threshold and the RegistryReplicationLagHigh threshold "
            f"({human_duration(ctx.lag_alert_threshold)}).",
            [Target(f"max by (region, source_region) ({REPLICATION_LAG.name}{sel()})",
                    "{{region}} ← {{source_region}}")],
            units.Seconds, size=(10, 8), steps=lag_steps,
        ),
        bar_gauge(
            "Seconds since each probe last ran",
            "Age of each probe's last run. Red: older than "
            f"{human_duration(ctx.stale_after)} (3 times the longest probe interval), "
            "where RegistryProbeNotRunning fires.",
            [Target(f"time() - max by (region, probe) ({PROBE_LAST_RUN.name}{sel()})",
                    "{{region}} {{probe}}", instant=True)],
            units.Seconds, size=(10, 8), decimals=0, min_value=0.0,
            steps=[(None, "green"), (ctx.stale_after, "red")],
        ),
        stat_panel(
            "Probes not running",
            "Probes for which RegistryProbeNotRunning or RegistryProbeNeverRan fires: "
            "their SLIs go stale and their alerts cannot fire.",
            [Target('count(ALERTS{alertname=~"RegistryProbeNotRunning|RegistryProbeNeverRan",'
                    'alertstate="firing",' + REGION + "})\nor vector(0)", instant=True)],
            units.Short, size=(4, 8), decimals=0, steps=[(None, "green"), (1.0, "red")],
        ),
    )


def _rollback_row(board: Board) -> None:
    board.row("Rollback readiness")
    board.add(
        bar_gauge(
            "Rollback targets gone",
            "Per repository, how many digests a rollback would go back to the registry no "
            "longer has: recent digests pulled by digest or pushed under a protected tag, "
            "and each protected tag's previous release (registry_slo_rollback_targets_"
            "missing; RegistryRollbackTargetGone pages when a previous release is gone). "
            "0: every target is there.",
            [Target(f"max by (region, repository) (registry_slo_rollback_targets_missing"
                    f"{sel()})", "{{region}} {{repository}}", instant=True)],
            units.Short, size=(24, 6), decimals=0, min_value=0.0,
            steps=[(None, "green"), (1.0, "red")],
        ),
    )


def _kubelet_row(board: Board) -> None:
    board.row("Image pulls as the nodes see them (kubelets)")
    board.add(
        time_series(
            "Kubelet pull p95 by image size",
            "p95 of successful image pulls as the kubelets timed them "
            "(kubelet_image_pull_duration_seconds, alpha since Kubernetes 1.30), by the "
            "kubelet's image size bucket: a registry or cache problem slows every size.",
            [Target("histogram_quantile(0.95, sum by (image_size_in_bytes, le) (rate("
                    "kubelet_image_pull_duration_seconds_bucket[$__rate_interval])))",
                    "{{image_size_in_bytes}}")],
            units.Seconds, size=(8, 7),
        ),
        time_series(
            "Kubelet pull failure ratio",
            "Share of the kubelets' pull_image runtime operations that failed "
            "(registry_slo:kubelet_image_pull_errors:rate / …pulls:rate).",
            [Target("registry_slo:kubelet_image_pull_errors:rate\n/\n"
                    "(registry_slo:kubelet_image_pulls:rate > 0)", "failures")],
            units.PercentUnit, size=(8, 7), decimals=2,
        ),
        bar_gauge(
            "Pods blocked on image pulls",
            "Containers waiting in ErrImagePull or ImagePullBackOff now, by namespace "
            "(kube-state-metrics): failed deployments due to images (M17).",
            [Target("sum by (namespace) (registry_slo:pods_blocked_on_image_pull)",
                    "{{namespace}}", instant=True)],
            units.Short, size=(8, 7), decimals=0, min_value=0.0,
            steps=[(None, "green"), (1.0, "red")],
        ),
    )


def build(ctx: DashboardContext, executive: DashboardRef, debug: DashboardRef
          ) -> models.Dashboard:
    """The On-call dashboard for the configuration ``ctx``."""
    board = Board(
        ONCALL.uid, ONCALL.title,
        "For responders: firing alerts and burn rates, pull latency, auth, failure "
        "reasons, replication lag and probes that stopped running.",
        [executive, debug], variables(),
    )
    _alerts_row(board, ctx)
    _latency_row(board, ctx, debug)
    _auth_row(board, ctx)
    _failures_row(board, ctx)
    if ctx.rollback:
        _rollback_row(board)
    if ctx.kubernetes:
        _kubelet_row(board)
    return board.build()
