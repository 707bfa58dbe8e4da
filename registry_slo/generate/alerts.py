"""Alerting rules: multi-window multi-burn-rate SLO alerts, absent SLIs, registry alerts.

SLO alerts (one rule per row of :data:`~registry_slo.sli.windows.BURN_RATE_TIERS`):

========================== ======== ============ ====== ====== =======
alert                      severity windows      factor budget for
========================== ======== ============ ====== ====== =======
RegistrySLOBurnRatePage    page     1h and 5m    14.4   2%     —
RegistrySLOBurnRatePage    page     6h and 30m   6      5%     5m
RegistrySLOBurnRateTicket  ticket   1d and 2h    3      10%    30m
RegistrySLOBurnRateTicket  ticket   3d and 6h    1      10%    1h30m
RegistrySLOSLIAbsent       ticket   5m SLI gone                10m
========================== ======== ============ ====== ====== =======

A traffic SLI has no value while nobody uses the registry, which is not a fault: its
absent alert watches the ingest sources it reads instead (``registry_slo_ingest_lines_total``).

(factors for a 30d period; they scale with the period.) Each carries ``severity``,
``long_window`` and ``short_window``, the SLO's identity labels and its ``labels``
(``team``, ``tier`` …), and ``runbook_url`` / ``dashboard_url`` annotations when the
configuration gives their base URLs.
"""

from __future__ import annotations

import re
from typing import Any

from registry_slo._units import format_duration
from registry_slo.config import AlertingConfig, RegionConfig, Settings, SLOTarget, TrafficSLI
from registry_slo.generate._model import (
    human_duration,
    identity,
    num,
    period_name,
    slo_selector,
)
from registry_slo.sli.windows import (
    BURN_RATE_TIERS,
    BurnRateTier,
    error_budget,
    time_to_exhaustion,
    window_name,
)
from registry_slo.vocabulary import (
    CERTIFICATE_EXPIRY,
    INGEST_LINES,
    PROBE_FAILURES,
    PROBE_LAST_RUN,
    PROBE_SKIPPED,
    PROBES_CONFIGURED,
    REGISTRY_FAILURES,
    REGISTRY_REQUESTS,
    REPLICATION_LAG,
    STORAGE_CAPACITY,
    STORAGE_USED,
    TAG_OVERWRITES,
)

__all__ = [
    "ABSENT_ALERT",
    "AUTH_REJECTED_ALERT",
    "BLOB_INTEGRITY_ALERT",
    "NEVER_RAN_ALERT",
    "NOT_RUNNING_ALERT",
    "PAGE_ALERT",
    "REPLICATION_LAG_ALERT",
    "SKIPPED_ALERT",
    "TICKET_ALERT",
    "absent_alert",
    "burn_rate_alerts",
    "registry_alerts",
]

PAGE_ALERT = "RegistrySLOBurnRatePage"
TICKET_ALERT = "RegistrySLOBurnRateTicket"
ABSENT_ALERT = "RegistrySLOSLIAbsent"
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

ABSENT_FOR = 600
"""Seconds the 5m SLI must be missing before ``RegistrySLOSLIAbsent`` fires."""
NOT_RUNNING_INTERVALS = 3
"""A probe whose last run is older than this many intervals is not running."""
SKIPPED_INTERVALS = 10
SKIPPED_THRESHOLD = 2
"""``RegistryProbeRunsSkipped``: more than this many skipped runs in SKIPPED_INTERVALS."""
COUNTER_WINDOW = 900
"""How long an integrity or credential failure keeps its alert firing (seconds)."""
REPLICATION_LAG_FOR = 600
STORAGE_FOR = 1800
AUTH_SPIKE_WINDOW = 600
AUTH_SPIKE_MIN_RATE = 0.1
"""Requests per second below which a region's auth failure ratio is not judged."""
AUTH_SPIKE_FOR = 600


def _runbook(alerting: AlertingConfig, slug: str) -> dict[str, str]:
    if alerting.runbook_url is None:
        return {}
    return {"runbook_url": f"{alerting.runbook_url.rstrip('/')}/{slug}"}


def _dashboard(alerting: AlertingConfig, region: str, slo: str | None = None) -> dict[str, str]:
    if alerting.dashboard_url is None:
        return {}
    base = alerting.dashboard_url
    query = f"var-region={region}" + (f"&var-slo={slo}" if slo else "")
    return {"dashboard_url": f"{base}{'&' if '?' in base else '?'}{query}"}


def _for(seconds: float) -> dict[str, str]:
    return {"for": format_duration(seconds)} if seconds else {}


def _tier_alert(target: SLOTarget, tier: BurnRateTier, alerting: AlertingConfig) -> dict[str, Any]:
    slo = target.slo
    period = slo.period_seconds
    factor = tier.factor(period)
    threshold = f"({num(factor)} * {num(error_budget(slo.objective_ratio))})"
    long_w, short_w = window_name(tier.long_window), window_name(tier.short_window)
    expr = (
        "max without (sloth_window) (\n"
        f"  slo:sli_error:ratio_rate{long_w}{slo_selector(target)} > {threshold}\n"
        ")\nand\n"
        "max without (sloth_window) (\n"
        f"  slo:sli_error:ratio_rate{short_w}{slo_selector(target)} > {threshold}\n"
        ")\n"
    )
    lasts = format_duration(time_to_exhaustion(factor, period))
    description = (
        f"The {slo.name} SLO ({num(slo.objective)}% over {period_name(target)}) in "
        f"{target.region} is burning its error budget more than {num(factor)}x faster "
        f"than sustainable over both the last {long_w} and {short_w}: "
        f"{num(tier.budget_fraction * 100)}% of the {period_name(target)} budget gone in "
        f"{long_w}, all of it in {lasts} at this rate."
    )
    if slo.description:
        description = f"{slo.description}. {description}"
    return {
        "alert": PAGE_ALERT if tier.severity == "page" else TICKET_ALERT,
        "expr": expr,
        **_for(tier.for_seconds),
        "labels": {
            **identity(target),
            "severity": tier.severity,
            "long_window": long_w,
            "short_window": short_w,
            **dict(sorted(slo.labels.items())),
        },
        "annotations": {
            "summary": f"{slo.name} in {target.region}: error budget burn over "
            f"{num(factor)}x ({long_w}/{short_w})",
            "description": description,
            **_runbook(alerting, slo.name),
            **_dashboard(alerting, target.region, slo.name),
        },
    }


def burn_rate_alerts(target: SLOTarget, alerting: AlertingConfig) -> list[dict[str, Any]]:
    """The multi-window multi-burn-rate alerts of one target, fastest first."""
    return [_tier_alert(target, tier, alerting) for tier in BURN_RATE_TIERS]


def absent_alert(target: SLOTarget, alerting: AlertingConfig) -> dict[str, Any]:
    """The alert for an SLI without data (exporter not scraped, probes not running, or
    the SLI's series missing, e.g. a mirror that exports no replication lag; for traffic
    SLIs, the ingest sources missing)."""
    slo = target.slo
    short = window_name(BURN_RATE_TIERS[0].short_window)
    if isinstance(slo.sli, TrafficSLI):
        sources = "|".join(target.sources)
        expr = f'absent({INGEST_LINES.total}{{source=~"{sources}"}})'
        description = (
            f"None of the ingest sources of {slo.name} in {target.region} "
            f"({', '.join(target.sources)}) has been exported for "
            f"{format_duration(ABSENT_FOR)}: the burn-rate alerts of this SLO cannot "
            "fire. Is the exporter scraped, and does its configuration still have "
            "these sources?"
        )
    else:
        expr = f"absent(slo:sli_error:ratio_rate{short}{slo_selector(target)})"
        description = (
            f"slo:sli_error:ratio_rate{short} of {slo.name} in {target.region} has had "
            f"no value for {format_duration(ABSENT_FOR)}: the burn-rate alerts of this "
            "SLO cannot fire. Is the exporter scraped, do its probes run, and does "
            f"it export the {slo.sli.kind} series for region {target.region}?"
        )
    return {
        "alert": ABSENT_ALERT,
        "expr": expr,
        **_for(ABSENT_FOR),
        "labels": {
            **identity(target),
            "severity": "ticket",
            **dict(sorted(slo.labels.items())),
        },
        "annotations": {
            "summary": f"{slo.name} in {target.region}: no SLI data",
            "description": description,
            **_runbook(alerting, "sli-absent"),
            **_dashboard(alerting, target.region, slo.name),
        },
    }


def _counter_rose(selector: str, window: int, by: str) -> str:
    """Series of a counter that rose within ``window``, including series born within it
    (the exporter creates a failure series at its first failure, which ``increase``
    alone cannot see)."""
    w = format_duration(window)
    return (
        f"sum by ({by}) (increase({selector}[{w}])) > 0\n"
        "or\n"
        f"sum by ({by}) ({selector} unless {selector} offset {w})\n"
    )


def _region_alerts(
    region: RegionConfig, alerting: AlertingConfig
) -> list[dict[str, Any]]:
    name = region.name
    interval = region.probe.interval
    stale = NOT_RUNNING_INTERVALS * interval
    sel = f'{{region="{name}"}}'
    not_running_annotations = {
        "summary": f"probe {{{{ $labels.probe }}}} in {name} is not running",
        "description": (
            f"The {{{{ $labels.probe }}}} probe of {name} has not recorded a run for more "
            f"than {NOT_RUNNING_INTERVALS} intervals ({human_duration(stale)}): its SLIs "
            "go stale and their alerts cannot fire. Check the exporter's logs and "
            "registry_slo_internal_errors_total."
        ),
        **_runbook(alerting, "registry-probe-not-running"),
        **_dashboard(alerting, name),
    }
    skipped_window = SKIPPED_INTERVALS * interval
    rules: list[dict[str, Any]] = [
        {
            "alert": NOT_RUNNING_ALERT,
            "expr": f"time() - max by (region, probe) ({PROBE_LAST_RUN.name}{sel}) > {num(stale)}",
            "labels": {"region": name, "severity": "ticket"},
            "annotations": not_running_annotations,
        },
        {
            "alert": NEVER_RAN_ALERT,
            "expr": f"max by (region, probe) ({PROBES_CONFIGURED.name}{sel})\n"
            f"unless on (region, probe)\n{PROBE_LAST_RUN.name}{sel}\n",
            **_for(stale),
            "labels": {"region": name, "severity": "ticket"},
            "annotations": {
                "summary": f"probe {{{{ $labels.probe }}}} in {name} has never run",
                "description": (
                    f"The {{{{ $labels.probe }}}} probe of {name} is configured but has not "
                    f"finished a single run in {human_duration(stale)}: its SLIs have no "
                    "data. Check the exporter's logs and registry_slo_internal_errors_total."
                ),
                **_runbook(alerting, "registry-probe-never-ran"),
                **_dashboard(alerting, name),
            },
        },
        {
            "alert": SKIPPED_ALERT,
            "expr": f"sum by (region, probe) (increase({PROBE_SKIPPED.total}{sel}"
            f"[{format_duration(skipped_window)}])) > {SKIPPED_THRESHOLD}",
            "labels": {"region": name, "severity": "ticket"},
            "annotations": {
                "summary": f"probe {{{{ $labels.probe }}}} in {name} skips runs",
                "description": (
                    f"More than {SKIPPED_THRESHOLD} scheduled runs of the "
                    f"{{{{ $labels.probe }}}} probe of {name} were skipped in the last "
                    f"{human_duration(skipped_window)}: runs take longer than the "
                    "interval, or the exporter is starved. Its SLIs see fewer events."
                ),
                **_runbook(alerting, "registry-probe-runs-skipped"),
                **_dashboard(alerting, name),
            },
        },
    ]
    if region.replicates_from:
        lag = f"{REPLICATION_LAG.name}{sel}"
        threshold = num(alerting.replication_lag_threshold)
        rules.append({
            "alert": REPLICATION_LAG_ALERT,
            "expr": f"max by (region, source_region) (\n  {lag}\n  unless\n"
            f"  {lag} <= {threshold}\n)\n",
            **_for(REPLICATION_LAG_FOR),
            "labels": {"region": name, "severity": "ticket"},
            "annotations": {
                "summary": f"{name} lags behind {{{{ $labels.source_region }}}}",
                "description": (
                    f"Replication from {{{{ $labels.source_region }}}} to {name} has "
                    f"been more than {human_duration(alerting.replication_lag_threshold)}"
                    f" behind (or not visible at all) for "
                    f"{format_duration(REPLICATION_LAG_FOR)}."
                ),
                **_runbook(alerting, "registry-replication-lag-high"),
                **_dashboard(alerting, name),
            },
        })
    integrity = f'{PROBE_FAILURES.total}{{region="{name}",reason="digest_mismatch"}}'
    rejected = f'{PROBE_FAILURES.total}{{region="{name}",reason=~"auth|denied"}}'
    window = format_duration(COUNTER_WINDOW)
    rules += [
        {
            "alert": BLOB_INTEGRITY_ALERT,
            "expr": _counter_rose(integrity, COUNTER_WINDOW, "region, probe"),
            "labels": {"region": name, "severity": "page"},
            "annotations": {
                "summary": f"{name} served content that does not match its digest",
                "description": (
                    f"The {{{{ $labels.probe }}}} probe of {name} received a blob or "
                    f"manifest whose digest did not match in the last {window}: "
                    "storage corruption or a misbehaving proxy. Any occurrence pages."
                ),
                **_runbook(alerting, "registry-blob-integrity-error"),
                **_dashboard(alerting, name),
            },
        },
        {
            "alert": AUTH_REJECTED_ALERT,
            "expr": _counter_rose(rejected, COUNTER_WINDOW, "region, probe"),
            "labels": {"region": name, "severity": "ticket"},
            "annotations": {
                "summary": f"{name} rejects the prober's credentials",
                "description": (
                    f"The {{{{ $labels.probe }}}} probe of {name} was refused (401/403) "
                    f"in the last {window}: expired or revoked credentials, a broken "
                    "token service, or changed permissions."
                ),
                **_runbook(alerting, "registry-probe-auth-rejected"),
                **_dashboard(alerting, name),
            },
        },
        *_traffic_alerts(region, alerting),
    ]
    return rules


def _traffic_alerts(region: RegionConfig, alerting: AlertingConfig) -> list[dict[str, Any]]:
    """Alerts on what the registry emits (ingest) and on its certificate."""
    name = region.name
    sel = f'region="{name}"'
    threshold = num(alerting.storage_threshold)
    window = format_duration(AUTH_SPIKE_WINDOW)
    ratio = num(alerting.auth_failure_ratio)
    failures, requests = REGISTRY_FAILURES.total, REGISTRY_REQUESTS.total
    rules: list[dict[str, Any]] = [
        {
            "alert": STORAGE_ALERT,
            "expr": f"max by (region, source) (\n  {STORAGE_USED.name}{{{sel}}}\n  /\n"
            f"  {STORAGE_CAPACITY.name}{{{sel}}} > 0\n) > {threshold}\n",
            **_for(STORAGE_FOR),
            "labels": {"region": name, "severity": "ticket"},
            "annotations": {
                "summary": f"{name} storage above {num(100 * alerting.storage_threshold)}%",
                "description": (
                    f"The registry of {name} reports more than "
                    f"{num(100 * alerting.storage_threshold)}% of its capacity in use "
                    "(source {{ $labels.source }}): plan garbage collection, retention or "
                    "more storage before pushes fail (F3)."
                ),
                **_runbook(alerting, "registry-storage-high"),
                **_dashboard(alerting, name),
            },
        },
        {
            "alert": AUTH_SPIKE_ALERT,
            "expr": (
                f"sum by (region) (rate({failures}{{{sel},reason=\"auth\"}}[{window}]))"
                f"\n/\nsum by (region) (rate({requests}{{{sel}}}[{window}])) > {ratio}"
                f"\nand\nsum by (region) (rate({requests}{{{sel}}}[{window}])) > "
                f"{num(AUTH_SPIKE_MIN_RATE)}\n"
            ),
            **_for(AUTH_SPIKE_FOR),
            "labels": {"region": name, "severity": "ticket"},
            "annotations": {
                "summary": f"authentication failures spike in {name}",
                "description": (
                    f"More than {num(100 * alerting.auth_failure_ratio)}% of the requests "
                    f"{name}'s ingest sources saw over the last {window} failed "
                    "authentication: expired tokens, a failing token service, or leaked "
                    "credentials being tried (M11, F7)."
                ),
                **_runbook(alerting, "registry-auth-failure-spike"),
                **_dashboard(alerting, name),
            },
        },
    ]
    if region.base_url.startswith("https://"):
        rules.append({
            "alert": CERTIFICATE_ALERT,
            "expr": f"{CERTIFICATE_EXPIRY.name}{{{sel}}} - time() < "
            f"{num(alerting.certificate_expiry_warning)}\n",
            "labels": {"region": name, "severity": "ticket"},
            "annotations": {
                "summary": f"the TLS certificate of {name} expires soon",
                "description": (
                    f"The certificate {name} presents expires within "
                    f"{human_duration(alerting.certificate_expiry_warning)}: renew it before "
                    "clients refuse to connect."
                ),
                **_runbook(alerting, "registry-certificate-expiring"),
                **_dashboard(alerting, name),
            },
        })
    if alerting.protected_repositories:
        repositories = "|".join(re.escape(r) for r in alerting.protected_repositories)
        overwrites = f'{TAG_OVERWRITES.total}{{{sel},repository=~"{repositories}"}}'
        rules.append({
            "alert": TAG_OVERWRITE_ALERT,
            "expr": _counter_rose(overwrites, COUNTER_WINDOW, "region, repository"),
            "labels": {"region": name, "severity": "page"},
            "annotations": {
                "summary": (
                    f"a tag of protected repository {{{{ $labels.repository }}}} in {name} "
                    "was moved"
                ),
                "description": (
                    "A push moved an existing tag of {{ $labels.repository }} to another "
                    f"digest in the last {format_duration(COUNTER_WINDOW)}: deployments by "
                    "tag may now run different content (F4). Check the audit log for who "
                    "pushed, and pin deployments by digest."
                ),
                **_runbook(alerting, "registry-protected-tag-overwritten"),
                **_dashboard(alerting, name),
            },
        })
    return rules


def registry_alerts(settings: Settings) -> list[dict[str, Any]]:
    """Rule groups (one per region) of the registry alerts that today's metrics support.

    Returns:
        Prometheus rule group dicts.
    """
    return [
        {
            "name": f"registry-slo/registry/{region.name}",
            "rules": _region_alerts(region, settings.alerting),
        }
        for region in settings.regions
    ]
