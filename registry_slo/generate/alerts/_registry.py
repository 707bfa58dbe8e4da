"""The registry alerts of one region, as a table of :class:`AlertRule`: probes that do
not run, replication lag, integrity and credential failures (from the probes), and
storage, authentication spikes, certificates and moved tags (from what the registry
emits), and overdue garbage collection (from its collector's output)."""

from __future__ import annotations

import re
from typing import Any

from registry_slo._units import format_duration, human_duration
from registry_slo.config import (
    AlertingConfig,
    IngestConfig,
    PrometheusConfig,
    RegionConfig,
    Settings,
)
from registry_slo.generate._model import num, selector
from registry_slo.generate.alerts._rollback import rollback_alert_rules
from registry_slo.generate.alerts._rule import AlertRule, render_alert
from registry_slo.vocabulary import (
    CERTIFICATE_EXPIRY,
    GC_LAST_SUCCESS,
    PROBE_FAILURES,
    PROBE_LAST_RUN,
    PROBE_SKIPPED,
    PROBES_CONFIGURED,
    RATE_LIMIT_LIMIT,
    RATE_LIMIT_REMAINING,
    REGISTRY_FAILURES,
    REGISTRY_REQUESTS,
    REPLICATION_LAG,
    STORAGE_CAPACITY,
    STORAGE_USED,
    TAG_OVERWRITES,
    Reason,
)

__all__ = [
    "AUTH_REJECTED_ALERT",
    "AUTH_SPIKE_ALERT",
    "AUTH_SPIKE_FOR",
    "AUTH_SPIKE_MIN_RATE",
    "AUTH_SPIKE_WINDOW",
    "BLOB_INTEGRITY_ALERT",
    "CERTIFICATE_ALERT",
    "COUNTER_WINDOW",
    "GC_OVERDUE_ALERT",
    "GC_OVERDUE_FOR",
    "NEVER_RAN_ALERT",
    "NOT_RUNNING_ALERT",
    "NOT_RUNNING_INTERVALS",
    "RATE_LIMIT_EXHAUSTED_ALERT",
    "RATE_LIMIT_EXHAUSTED_FOR",
    "RATE_LIMIT_LOW_ALERT",
    "RATE_LIMIT_LOW_FOR",
    "REPLICATION_LAG_ALERT",
    "REPLICATION_LAG_FOR",
    "SKIPPED_ALERT",
    "SKIPPED_INTERVALS",
    "SKIPPED_THRESHOLD",
    "STORAGE_ALERT",
    "STORAGE_FOR",
    "TAG_OVERWRITE_ALERT",
    "counter_window",
    "gc_sources",
    "not_running_after",
    "region_alert_rules",
    "region_alerts",
    "registry_alerts",
    "skipped_window",
]

NOT_RUNNING_ALERT = "RegistryProbeNotRunning"
NEVER_RAN_ALERT = "RegistryProbeNeverRan"
SKIPPED_ALERT = "RegistryProbeRunsSkipped"
REPLICATION_LAG_ALERT = "RegistryReplicationLagHigh"
BLOB_INTEGRITY_ALERT = "RegistryBlobIntegrityError"
AUTH_REJECTED_ALERT = "RegistryProbeAuthRejected"
STORAGE_ALERT = "RegistryStorageHigh"
AUTH_SPIKE_ALERT = "RegistryAuthFailureSpike"
CERTIFICATE_ALERT = "RegistryCertificateExpiring"
TAG_OVERWRITE_ALERT = "RegistryProtectedTagOverwritten"
RATE_LIMIT_LOW_ALERT = "RegistryRateLimitHeadroomLow"
RATE_LIMIT_EXHAUSTED_ALERT = "RegistryRateLimitExhausted"
GC_OVERDUE_ALERT = "RegistryGarbageCollectionOverdue"

NOT_RUNNING_INTERVALS = 3
"""A probe whose last run is older than this many intervals (plus the age of the
sample Prometheus holds) is not running."""
SKIPPED_INTERVALS = 10
SKIPPED_THRESHOLD = 2
"""``RegistryProbeRunsSkipped``: more than this many skipped runs in SKIPPED_INTERVALS."""
COUNTER_WINDOW = 900
"""How long an integrity or credential failure keeps its alert firing (seconds; at
least four scrapes)."""
REPLICATION_LAG_FOR = 600
STORAGE_FOR = 1800
AUTH_SPIKE_WINDOW = 600
AUTH_SPIKE_MIN_RATE = 0.1
"""Requests per second below which a region's auth failure ratio is not judged."""
AUTH_SPIKE_FOR = 600
RATE_LIMIT_LOW_FOR = 900
RATE_LIMIT_EXHAUSTED_FOR = 300
GC_OVERDUE_FOR = 3600
"""``RegistryGarbageCollectionOverdue`` waits this long: a weekly run that finishes up to
an hour later than the week before (it had more to do) raises nothing."""

_PROBE = "{{ $labels.probe }}"


def not_running_after(region: RegionConfig, prometheus: PrometheusConfig) -> float:
    """Seconds after its last run's start that a probe counts as not running:
    NOT_RUNNING_INTERVALS intervals, plus a scrape and an evaluation interval, the age the
    last-run sample can have when a rule reads it (else a 2s probe scraped every 30s
    would never look alive)."""
    return (NOT_RUNNING_INTERVALS * region.probe.interval + prometheus.scrape_interval
            + prometheus.evaluation_interval)


def skipped_window(region: RegionConfig, prometheus: PrometheusConfig) -> float:
    """The window ``RegistryProbeRunsSkipped`` counts skipped runs over: SKIPPED_INTERVALS
    probe intervals, raised to four scrapes (see :func:`warnings`)."""
    return prometheus.window(SKIPPED_INTERVALS * region.probe.interval)


def counter_window(prometheus: PrometheusConfig) -> float:
    """How long a counted integrity, credential or tag failure keeps its alert firing."""
    return prometheus.window(COUNTER_WINDOW)


def _counter_rose(counter: str, window: float, by: str) -> str:
    """Series of a counter that rose within ``window``. The exporter creates every
    counter these alerts read at zero when it starts (probe failures of every reason,
    the overwrites of each protected repository), so ``increase`` sees the first failure;
    a series that is present but did not move never fires, whatever Prometheus holds
    from before (a fresh Prometheus, a restarted exporter)."""
    return f"sum by ({by}) (increase({counter}[{format_duration(window)}])) > 0\n"


def _probe_alerts(region: RegionConfig, alerting: AlertingConfig,
                  prometheus: PrometheusConfig) -> list[AlertRule]:
    """Alerts on the prober itself and on what its probes found."""
    name = region.name
    stale = not_running_after(region, prometheus)
    skipped = skipped_window(region, prometheus)
    sel = selector(region=name)
    last_run = f"{PROBE_LAST_RUN.name}{sel}"
    counted = counter_window(prometheus)
    window = format_duration(counted)
    integrity = PROBE_FAILURES.total + selector(region=name, reason=Reason.DIGEST_MISMATCH)
    rejected = PROBE_FAILURES.total + selector(region=name, reason=(Reason.AUTH, Reason.DENIED))
    rules = [
        AlertRule(
            name=NOT_RUNNING_ALERT,
            expr=f"time() - max by (region, probe) ({last_run}) > {num(stale)}",
            severity="ticket",
            summary=f"probe {_PROBE} in {name} is not running",
            description=(
                f"The {_PROBE} probe of {name} has not recorded a run for more than "
                f"{human_duration(stale)} ({NOT_RUNNING_INTERVALS} intervals and the "
                "scrape and evaluation delay): its SLIs "
                "go stale and their alerts cannot fire. Check the exporter's logs and "
                "registry_slo_internal_errors_total."
            ),
            runbook="registry-probe-not-running",
            about=name,
        ),
        AlertRule(
            name=NEVER_RAN_ALERT,
            expr=f"max by (region, probe) ({PROBES_CONFIGURED.name}{sel})\n"
            f"unless on (region, probe)\n{last_run}\n",
            severity="ticket",
            summary=f"probe {_PROBE} in {name} has never run",
            description=(
                f"The {_PROBE} probe of {name} is configured but has not finished a "
                f"single run in {human_duration(stale)}: its SLIs have no data. Check "
                "the exporter's logs and registry_slo_internal_errors_total."
            ),
            runbook="registry-probe-never-ran",
            about=name,
            for_seconds=prometheus.hold(stale),
        ),
        AlertRule(
            name=SKIPPED_ALERT,
            expr=f"sum by (region, probe) (increase({PROBE_SKIPPED.total}{sel}"
            f"[{format_duration(skipped)}])) > {SKIPPED_THRESHOLD}",
            severity="ticket",
            summary=f"probe {_PROBE} in {name} skips runs",
            description=(
                f"More than {SKIPPED_THRESHOLD} scheduled runs of the {_PROBE} probe of "
                f"{name} were skipped in the last {human_duration(skipped)}: runs "
                "take longer than the interval, or the exporter is starved. Its SLIs see "
                "fewer events."
            ),
            runbook="registry-probe-runs-skipped",
            about=name,
        ),
    ]
    if region.replicates_from:
        lag = f"{REPLICATION_LAG.name}{sel}"
        rules.append(AlertRule(
            name=REPLICATION_LAG_ALERT,
            expr=f"max by (region, source_region) (\n  {lag}\n  unless\n"
            f"  {lag} <= {num(alerting.replication_lag_threshold)}\n)\n",
            severity="ticket",
            summary=f"{name} lags behind {{{{ $labels.source_region }}}}",
            description=(
                f"Replication from {{{{ $labels.source_region }}}} to {name} has been more "
                f"than {human_duration(alerting.replication_lag_threshold)} behind (or not "
                f"visible at all) for {format_duration(REPLICATION_LAG_FOR)}."
            ),
            runbook="registry-replication-lag-high",
            about=name,
            for_seconds=REPLICATION_LAG_FOR,
        ))
    rules += [
        AlertRule(
            name=BLOB_INTEGRITY_ALERT,
            expr=_counter_rose(integrity, counted, "region, probe"),
            severity="page",
            summary=f"{name} served content that does not match its digest",
            description=(
                f"The {_PROBE} probe of {name} received a blob or manifest whose digest "
                f"did not match in the last {window}: storage corruption or a misbehaving "
                "proxy. Any occurrence pages."
            ),
            runbook="registry-blob-integrity-error",
            about=name,
        ),
        AlertRule(
            name=AUTH_REJECTED_ALERT,
            expr=_counter_rose(rejected, counted, "region, probe"),
            severity="ticket",
            summary=f"{name} rejects the prober's credentials",
            description=(
                f"The {_PROBE} probe of {name} was refused (401/403) in the last {window}: "
                "expired or revoked credentials, a broken token service, or changed "
                "permissions."
            ),
            runbook="registry-probe-auth-rejected",
            about=name,
        ),
    ]
    return rules


def _traffic_alerts(region: RegionConfig, alerting: AlertingConfig,
                    prometheus: PrometheusConfig) -> list[AlertRule]:
    """Alerts on what the registry emits (ingest) and on its certificate."""
    name = region.name
    sel = selector(region=name)
    window = format_duration(prometheus.window(AUTH_SPIKE_WINDOW))
    counted = counter_window(prometheus)
    auth_failures = REGISTRY_FAILURES.total + selector(region=name, reason=Reason.AUTH)
    requests = REGISTRY_REQUESTS.total + sel
    storage_percent = num(100 * alerting.storage_threshold)
    rules = [
        AlertRule(
            name=STORAGE_ALERT,
            expr=f"max by (region, source) (\n  {STORAGE_USED.name}{sel}\n  /\n"
            f"  {STORAGE_CAPACITY.name}{sel} > 0\n) > {num(alerting.storage_threshold)}\n",
            severity="ticket",
            summary=f"{name} storage above {storage_percent}%",
            description=(
                f"The registry of {name} reports more than {storage_percent}% of its "
                "capacity in use (source {{ $labels.source }}): plan garbage collection, "
                "retention or more storage before pushes fail (F3)."
            ),
            runbook="registry-storage-high",
            about=name,
            for_seconds=STORAGE_FOR,
        ),
        AlertRule(
            name=AUTH_SPIKE_ALERT,
            expr=(
                f"sum by (region) (rate({auth_failures}[{window}]))"
                f"\n/\nsum by (region) (rate({requests}[{window}])) > "
                f"{num(alerting.auth_failure_ratio)}"
                f"\nand\nsum by (region) (rate({requests}[{window}])) > "
                f"{num(AUTH_SPIKE_MIN_RATE)}\n"
            ),
            severity="ticket",
            summary=f"authentication failures spike in {name}",
            description=(
                f"More than {num(100 * alerting.auth_failure_ratio)}% of the requests "
                f"{name}'s ingest sources saw over the last {window} failed "
                "authentication: expired tokens, a failing token service, or leaked "
                "credentials being tried (M11, F7)."
            ),
            runbook="registry-auth-failure-spike",
            about=name,
            for_seconds=AUTH_SPIKE_FOR,
        ),
    ]
    remaining = f"{RATE_LIMIT_REMAINING.name}{sel}"
    headroom = num(alerting.rate_limit_headroom)
    rules += [
        AlertRule(
            name=RATE_LIMIT_LOW_ALERT,
            # Exhausted (0) is the page's: "> 0" keeps the ticket to "running low".
            expr=f"min by (region, policy) (\n  {remaining}\n  /\n"
            f"  ({RATE_LIMIT_LIMIT.name}{sel} > 0)\n) < {headroom} > 0\n",
            severity="ticket",
            summary=f"{name} rate limit {{{{ $labels.policy }}}} is running low",
            description=(
                f"Less than {num(100 * alerting.rate_limit_headroom)}% of {name}'s "
                "rate-limit quota ({{ $labels.policy }}) has been left for "
                f"{format_duration(RATE_LIMIT_LOW_FOR)}, as the registry's answers state "
                "it: CI pushes and pulls will soon get 429s (F9). Spread the load, use an "
                "authenticated or paid quota, or a pull-through cache."
            ),
            runbook="registry-rate-limit-low",
            about=name,
            for_seconds=RATE_LIMIT_LOW_FOR,
        ),
        AlertRule(
            name=RATE_LIMIT_EXHAUSTED_ALERT,
            expr=f"max by (region, policy) ({remaining}) == 0\n",
            severity="page",
            summary=f"{name} rate limit {{{{ $labels.policy }}}} is exhausted",
            description=(
                f"{name}'s rate-limit quota ({{{{ $labels.policy }}}}) has been spent for "
                f"{format_duration(RATE_LIMIT_EXHAUSTED_FOR)}: the registry answers 429 "
                "until it resets (registry_slo_rate_limit_reset_seconds); pulls and pushes "
                "fail (F9)."
            ),
            runbook="registry-rate-limit-exhausted",
            about=name,
            for_seconds=RATE_LIMIT_EXHAUSTED_FOR,
        ),
    ]
    if region.base_url.startswith("https://"):
        rules.append(AlertRule(
            name=CERTIFICATE_ALERT,
            expr=f"{CERTIFICATE_EXPIRY.name}{sel} - time() < "
            f"{num(alerting.certificate_expiry_warning)}\n",
            severity="ticket",
            summary=f"the TLS certificate of {name} expires soon",
            description=(
                f"The certificate {name} presents expires within "
                f"{human_duration(alerting.certificate_expiry_warning)}: renew it before "
                "clients refuse to connect."
            ),
            runbook="registry-certificate-expiring",
            about=name,
        ))
    if alerting.protected_repositories:
        repositories = "|".join(re.escape(r) for r in alerting.protected_repositories)
        # Always a regex (of escaped names), even for one repository.
        overwrites = f'{TAG_OVERWRITES.total}{{region="{name}",repository=~"{repositories}"}}'
        rules.append(AlertRule(
            name=TAG_OVERWRITE_ALERT,
            expr=_counter_rose(overwrites, counted, "region, repository"),
            severity="page",
            summary=(
                f"a tag of protected repository {{{{ $labels.repository }}}} in {name} "
                "was moved"
            ),
            description=(
                "A push moved an existing tag of {{ $labels.repository }} to another "
                f"digest in the last {format_duration(counted)}: deployments by "
                "tag may now run different content (F4). Check the audit log for who "
                "pushed, and pin deployments by digest."
            ),
            runbook="registry-protected-tag-overwritten",
            about=name,
        ))
    return rules


def gc_sources(ingest: IngestConfig) -> dict[str, list[str]]:
    """The ``distribution-gc`` log sources (garbage collector output) of each region
    that has one."""
    out: dict[str, list[str]] = {}
    for source in ingest.logs:
        if not source.reads_traffic:
            out.setdefault(source.region, []).append(source.name)
    return out


def _gc_alerts(region: RegionConfig, alerting: AlertingConfig) -> list[AlertRule]:
    """Garbage collection overdue, for a region whose collector's output is read.

    ``registry_slo_gc_last_success_timestamp_seconds`` exists from the exporter's start:
    before any run is read it holds the time the source started watching (kept across
    restarts), so a collector that never runs fires one interval after that, and a
    fresh exporter is quiet."""
    name = region.name
    after = alerting.gc_overdue_after
    return [AlertRule(
        name=GC_OVERDUE_ALERT,
        expr=f"time() - max by (region) ({GC_LAST_SUCCESS.name}{selector(region=name)})"
        f" > {num(after)}\n",
        severity="ticket",
        summary=f"garbage collection of {name} is overdue",
        description=(
            f"No garbage collection run of {name} has completed successfully for more "
            f"than {human_duration(after)} (dry runs do not count; before any run was "
            "read, since the exporter began reading the collector's output): deleted "
            "and untagged images keep their storage until it runs (M8). Check the GC job "
            "(cron, CronJob), its log, and registry_slo_gc_runs_total by result."
        ),
        runbook="registry-garbage-collection-overdue",
        about=name,
        for_seconds=GC_OVERDUE_FOR,
    )]


def region_alert_rules(region: RegionConfig, alerting: AlertingConfig,
                       prometheus: PrometheusConfig, *,
                       gc: bool = False) -> list[AlertRule]:
    """The registry alerts of one region, in the order of its rule group.

    Args:
        region: the region.
        alerting: the ``alerting`` section (thresholds, protected repositories).
        prometheus: the ``prometheus`` section (windows hold four scrapes).
        gc: whether the region has a ``distribution-gc`` log source (its garbage
            collection alert).
    """
    return [*_probe_alerts(region, alerting, prometheus),
            *_traffic_alerts(region, alerting, prometheus),
            *(_gc_alerts(region, alerting) if gc else []),
            *rollback_alert_rules(region, prometheus)]


def region_alerts(region: RegionConfig, alerting: AlertingConfig,
                  prometheus: PrometheusConfig, *, gc: bool = False) -> list[dict[str, Any]]:
    """The rules of one region's registry alert group, rendered (see
    :func:`region_alert_rules`)."""
    return [render_alert(rule, alerting)
            for rule in region_alert_rules(region, alerting, prometheus, gc=gc)]


def registry_alerts(settings: Settings) -> list[dict[str, Any]]:
    """Rule groups (one per region) of the registry alerts that today's metrics support.

    Returns:
        Prometheus rule group dicts.
    """
    collected = gc_sources(settings.ingest)
    return [
        {
            "name": f"registry-slo/registry/{region.name}",
            "rules": region_alerts(region, settings.alerting, settings.prometheus,
                                   gc=region.name in collected),
        }
        for region in settings.regions
    ]
