"""The SLI engine: events counted per SLO and region, windows, burn rates and budgets.

The math in :mod:`registry_slo.sli.windows` is shared by the exporter's own engine
(:class:`SLIEngine`, with its :class:`SLOStore`) and the generated Prometheus rules
(:mod:`registry_slo.generate`). What an SLO is lives in the configuration
(:class:`registry_slo.config.SLOSpec`); this package counts and evaluates it.
"""

from __future__ import annotations

from registry_slo.sli.engine import Cursor, SLIEngine
from registry_slo.sli.evaluation import SLOStatus, TierStatus, WindowStatus
from registry_slo.sli.store import SLOStore, StoreError
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
    "BurnRateTier",
    "Cursor",
    "SLIEngine",
    "SLOStatus",
    "SLOStore",
    "StoreError",
    "TierStatus",
    "WindowStatus",
    "budget_consumed",
    "budget_remaining",
    "burn_factor",
    "burn_rate",
    "error_budget",
    "error_ratio",
    "objective_ratio",
    "slo_windows",
    "tier_firing",
    "time_to_exhaustion",
]
