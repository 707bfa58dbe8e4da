"""The alerts of one SLO target: a multi-window multi-burn-rate alert per row of the
burn-rate table, and the alert for an SLI without data."""

from __future__ import annotations

from typing import Any, assert_never

from registry_slo._units import format_duration
from registry_slo.config import (
    AlertingConfig,
    AuthSuccessSLI,
    ProbeLatencySLI,
    ProbeSuccessSLI,
    ReplicationLagSLI,
    SLOTarget,
    TrafficLatencySLI,
    TrafficSuccessSLI,
)
from registry_slo.generate._model import num, period_name, slo_selector
from registry_slo.generate.alerts._rule import AlertRule, render_alert
from registry_slo.sli.windows import (
    BURN_RATE_TIERS,
    BurnRateTier,
    error_budget,
    time_to_exhaustion,
)
from registry_slo.vocabulary import INGEST_LINES

__all__ = [
    "ABSENT_ALERT",
    "ABSENT_FOR",
    "PAGE_ALERT",
    "TICKET_ALERT",
    "absent_alert",
    "burn_rate_alerts",
]

PAGE_ALERT = "RegistrySLOBurnRatePage"
TICKET_ALERT = "RegistrySLOBurnRateTicket"
ABSENT_ALERT = "RegistrySLOSLIAbsent"
ABSENT_FOR = 600
"""Seconds the 5m SLI must be missing before ``RegistrySLOSLIAbsent`` fires."""


def _tier_alert(target: SLOTarget, tier: BurnRateTier) -> AlertRule:
    slo = target.slo
    period = slo.period_seconds
    factor = tier.factor(period)
    threshold = f"({num(factor)} * {num(error_budget(slo.objective_ratio))})"
    long_w, short_w = format_duration(tier.long_window), format_duration(tier.short_window)
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
    return AlertRule(
        name=PAGE_ALERT if tier.severity == "page" else TICKET_ALERT,
        expr=expr,
        severity=tier.severity,
        summary=f"{slo.name} in {target.region}: error budget burn over "
        f"{num(factor)}x ({long_w}/{short_w})",
        description=description,
        runbook=slo.name,
        about=target,
        for_seconds=tier.for_seconds,
        labels={"long_window": long_w, "short_window": short_w},
    )


def burn_rate_alerts(target: SLOTarget, alerting: AlertingConfig) -> list[dict[str, Any]]:
    """The multi-window multi-burn-rate alerts of one target, fastest first."""
    return [render_alert(_tier_alert(target, tier), alerting) for tier in BURN_RATE_TIERS]


def _absent(target: SLOTarget) -> AlertRule:
    slo = target.slo
    sli = slo.sli
    match sli:
        case TrafficSuccessSLI() | TrafficLatencySLI():
            # No traffic is no fault: watch the ingest sources the SLI reads instead.
            sources = "|".join(target.sources)
            expr = f'absent({INGEST_LINES.total}{{source=~"{sources}"}})'
            description = (
                f"None of the ingest sources of {slo.name} in {target.region} "
                f"({', '.join(target.sources)}) has been exported for "
                f"{format_duration(ABSENT_FOR)}: the burn-rate alerts of this SLO cannot "
                "fire. Is the exporter scraped, and does its configuration still have "
                "these sources?"
            )
        case ProbeSuccessSLI() | ProbeLatencySLI() | AuthSuccessSLI() | ReplicationLagSLI():
            short = format_duration(BURN_RATE_TIERS[0].short_window)
            expr = f"absent(slo:sli_error:ratio_rate{short}{slo_selector(target)})"
            description = (
                f"slo:sli_error:ratio_rate{short} of {slo.name} in {target.region} has had "
                f"no value for {format_duration(ABSENT_FOR)}: the burn-rate alerts of this "
                "SLO cannot fire. Is the exporter scraped, do its probes run, and does "
                f"it export the {sli.kind} series for region {target.region}?"
            )
        case _:
            assert_never(sli)
    return AlertRule(
        name=ABSENT_ALERT,
        expr=expr,
        severity="ticket",
        summary=f"{slo.name} in {target.region}: no SLI data",
        description=description,
        runbook="sli-absent",
        about=target,
        for_seconds=ABSENT_FOR,
    )


def absent_alert(target: SLOTarget, alerting: AlertingConfig) -> dict[str, Any]:
    """The alert for an SLI without data (exporter not scraped, probes not running, or
    the SLI's series missing, e.g. a mirror that exports no replication lag; for traffic
    SLIs, the ingest sources missing)."""
    return render_alert(_absent(target), alerting)
