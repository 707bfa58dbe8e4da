"""PromQL the dashboards share: template variables, selectors and robust ratios.

The expressions use Grafana's variables: ``$region`` and ``$slo`` (multi-value, "All" is
``.*``), ``$__rate_interval`` and ``$__range``. Label values from the configuration
(SLO names, probes) are lowercase letters, digits and ``-``: safe in a matcher.
"""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard as builders
from grafana_foundation_sdk.cog.builder import Builder
from grafana_foundation_sdk.models import dashboard as models

from registry_slo.generate.dashboards._kit import DATASOURCE
from registry_slo.vocabulary import (
    PROBES_CONFIGURED,
)

__all__ = [
    "RATE",
    "REGION",
    "SLO",
    "budget_burn",
    "failure_ratio",
    "quantile",
    "sel",
    "slo_sel",
    "variables",
]

RATE = "$__rate_interval"
REGION = 'region=~"$region"'
SLO = 'sloth_slo=~"$slo"'


def sel(*matchers: str) -> str:
    """``{region=~"$region",probe="pull"}`` from matchers (always with the region)."""
    return "{" + ",".join((REGION, *matchers)) + "}"


def slo_sel(slo: str | None = None) -> str:
    """The matcher of ``slo:*`` series: one SLO by name, or the ``$slo`` selection."""
    name = f'sloth_slo="{slo}"' if slo is not None else SLO
    return "{" + f"{name},{REGION}" + "}"


def failure_ratio(failures: str, requests: str, by: str) -> str:
    """``failures / requests`` per ``by``, with ``0`` where a group has requests and no
    failure series at all (counters born at their first failure)."""
    fail = f"sum by ({by}) (rate({failures}[{RATE}]))"
    total = f"sum by ({by}) (rate({requests}[{RATE}]))"
    return f"(\n  {fail}\n  or\n  0 * {total}\n)\n/\n{total}"


def quantile(q: float, bucket_selector: str, by: str) -> str:
    """``histogram_quantile(q, …)`` of a ``_bucket`` selector, per ``by`` (``le`` added)."""
    return (f"histogram_quantile({q:g}, sum by ({by}, le) "
            f"(rate({bucket_selector}[{RATE}])))")


def budget_burn(window: str, slo: str | None = None) -> str:
    """The burn rate over ``window`` (``1h``): the error ratio recorded for that window
    divided by the error budget, per SLO and region."""
    match = slo_sel(slo)
    return (f"slo:sli_error:ratio_rate{window}{match}\n"
            f"/ ignoring (sloth_window)\nslo:error_budget:ratio{match}")


def variables() -> list[Builder[models.VariableModel]]:
    """The template variables every dashboard has: ``datasource``, ``region``, ``slo``."""
    return [
        builders.DatasourceVariable("datasource")
        .label("Data source")
        .description("The Prometheus that scrapes the exporter and evaluates the "
                     "generated rules.")
        .type("prometheus"),
        builders.QueryVariable("region")
        .label("Region")
        .description("Registry regions (the exporter's region label).")
        .datasource(DATASOURCE)
        .query(f"label_values({PROBES_CONFIGURED.name}, region)")
        .refresh(models.VariableRefresh.ON_TIME_RANGE_CHANGED)
        .sort(models.VariableSort.ALPHABETICAL_ASC)
        .multi(True)
        .include_all(True)
        .all_value(".*")
        .current(models.VariableOption(selected=True, text=["All"], value=["$__all"])),
        builders.QueryVariable("slo")
        .label("SLO")
        .description("SLOs of the selected regions (from slo:info).")
        .datasource(DATASOURCE)
        .query('label_values(slo:info{region=~"$region"}, sloth_slo)')
        .refresh(models.VariableRefresh.ON_TIME_RANGE_CHANGED)
        .sort(models.VariableSort.ALPHABETICAL_ASC)
        .multi(True)
        .include_all(True)
        .all_value(".*")
        .current(models.VariableOption(selected=True, text=["All"], value=["$__all"])),
    ]
