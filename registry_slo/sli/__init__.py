"""SLO specifications and the window / burn-rate math.

The math in :mod:`registry_slo.sli.windows` is shared by the generated Prometheus rules
(:mod:`registry_slo.generate`) and the exporter's own SLI engine.
"""

from __future__ import annotations

from registry_slo.sli.spec import (
    SLI,
    SLI_KINDS,
    AlertingConfig,
    AuthSuccessSLI,
    MaintenanceWindow,
    ProbeLatencySLI,
    ProbeSuccessSLI,
    Receiver,
    ReplicationLagSLI,
    SLIKind,
    SLOSpec,
    SLOTopology,
    TrafficLatencySLI,
    TrafficSuccessSLI,
    sli_summary,
)
from registry_slo.sli.windows import (
    BURN_RATE_TIERS,
    BurnRateTier,
    budget_consumed,
    budget_remaining,
    burn_factor,
    burn_rate,
    error_budget,
    error_ratio,
    objective_ratio,
    slo_windows,
    tier_firing,
    time_to_exhaustion,
)

__all__ = [
    "BURN_RATE_TIERS",
    "SLI",
    "SLI_KINDS",
    "AlertingConfig",
    "AuthSuccessSLI",
    "BurnRateTier",
    "MaintenanceWindow",
    "ProbeLatencySLI",
    "ProbeSuccessSLI",
    "Receiver",
    "ReplicationLagSLI",
    "SLIKind",
    "SLOSpec",
    "SLOTopology",
    "TrafficLatencySLI",
    "TrafficSuccessSLI",
    "budget_consumed",
    "budget_remaining",
    "burn_factor",
    "burn_rate",
    "error_budget",
    "error_ratio",
    "objective_ratio",
    "sli_summary",
    "slo_windows",
    "tier_firing",
    "time_to_exhaustion",
]
