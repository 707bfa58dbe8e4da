"""The Executive dashboard: are the registries meeting their SLOs, and how much budget is
left — per SLO of the configuration, with thresholds at its objective; plus what users'
pushes and pulls see, from the registries' own logs, storage use and its projection
(M7), and signed-image and SBOM coverage where the registries' logs show it (M10)."""

from __future__ import annotations

from grafana_foundation_sdk.models import dashboard as models
from grafana_foundation_sdk.models import units

from registry_slo.generate.dashboards._context import DashboardContext, SLOView
from registry_slo.generate.dashboards._kit import (
    Board,
    DashboardRef,
    Step,
    Target,
    bar_gauge,
    stat_panel,
    time_series,
)
from registry_slo.generate.dashboards._promql import (
    REGION,
    budget_burn,
    failure_ratio,
    sel,
    slo_sel,
    variables,
)

__all__ = ["EXECUTIVE", "build"]

EXECUTIVE = DashboardRef("registry-slo-executive", "Registry SLOs: executive")

_BUDGET_STEPS: list[Step] = [(None, "red"), (0.0, "orange"), (0.25, "green")]
_REMAINING = "slo:period_error_budget_remaining:ratio"


def _objective_steps(slo: SLOView) -> list[Step]:
    return [(None, "red"), (slo.objective, "green")]


def _slo_row(board: Board, slo: SLOView, oncall: DashboardRef) -> None:
    """Four panels for one SLO: SLI and budget over the period, SLI and burn over time."""
    about = slo.description or slo.kind.replace("_", " ")
    board.row(f"{slo.name}: {about}")
    match = slo_sel(slo.name)
    board.add(
        stat_panel(
            f"{slo.name}: SLI over {slo.period}",
            f"Share of good events over the SLO period ({slo.period}) per region, from "
            f"slo:sli_error:ratio_rate{slo.period}. Green at or above the objective "
            f"{slo.objective_text}.",
            [Target(f"1 - slo:sli_error:ratio_rate{slo.period}{match}", "{{region}}",
                    instant=True)],
            units.PercentUnit, decimals=3, steps=_objective_steps(slo), links=[oncall],
        ),
        stat_panel(
            f"{slo.name}: error budget remaining",
            f"Share of the {slo.period} error budget ({slo.objective_text} objective) "
            "not yet spent, per region (slo:period_error_budget_remaining:ratio). "
            "Negative: the SLO is missed for this period.",
            [Target(f"{_REMAINING}{match}", "{{region}}", instant=True)],
            units.PercentUnit, decimals=1, steps=_BUDGET_STEPS, links=[oncall],
        ),
        time_series(
            f"{slo.name}: SLI over 1h windows",
            "Share of good events over the last hour, per region "
            f"(slo:sli_error:ratio_rate1h), against the objective {slo.objective_text} "
            "(dashed line).",
            [Target(f"1 - slo:sli_error:ratio_rate1h{match}", "{{region}}")],
            units.PercentUnit, size=(6, 5), decimals=3, steps=_objective_steps(slo),
        ),
        time_series(
            f"{slo.name}: error budget burn rate",
            "How many times faster than sustainable the budget burns, over the page "
            f"windows 1h and 6h. Dashed lines: 1 (the budget lasts exactly {slo.period}), "
            f"the 6h page factor {slo.factors[1]:g} and the 1h page factor "
            f"{slo.factors[0]:g} of the generated alerts.",
            [Target(budget_burn("1h", slo.name), "{{region}} 1h"),
             Target(budget_burn("6h", slo.name), "{{region}} 6h")],
            units.NoUnit, size=(6, 5), decimals=2,
            steps=[(None, "green"), (1.0, "yellow"), (slo.factors[1], "orange"),
                   (slo.factors[0], "red")],
        ),
    )


def _traffic_row(board: Board, ctx: DashboardContext) -> None:
    board.row("What users see (registry logs)")
    for probe, ops in (("pull", "pull_.*"), ("push", "push_.*")):
        slo = ctx.slo_for("probe_success", probe)
        steps = _objective_steps(slo) if slo is not None else None
        target = "" if slo is None else f" Dashed line: the {slo.name} objective."
        match = sel(f'operation=~"{ops}"')
        requests = f"registry_slo_registry_requests_total{match}"
        failures = f"registry_slo_registry_request_failures_total{match}"
        board.add(time_series(
            f"Client {probe} success rate by region",
            f"Share of {probe} requests (operations {ops.replace('.*', '*')}) the registries "
            "answered successfully, from their logs and notifications (ingest): what every "
            "client saw, not only the probes. Any status of 400 or more counts as a "
            f"failure, including 404s for missing images.{target}",
            [Target(f"1 - (\n{failure_ratio(failures, requests, 'region')}\n)",
                    "{{region}}")],
            units.PercentUnit, size=(8, 8), decimals=3, steps=steps,
        ))
    board.add(time_series(
        "Client requests by region and operation",
        "Requests served per second, from the registries' logs and notifications "
        "(registry_slo_registry_requests_total), by operation.",
        [Target("sum by (region, operation) "
                f"(rate(registry_slo_registry_requests_total{{{REGION}}}[$__rate_interval]))",
                "{{region}} {{operation}}")],
        units.RequestsPerSecond, size=(8, 8), stacked=True,
    ))


_USED = "registry_slo_registry_storage_used_bytes"
_CAPACITY = "registry_slo_registry_storage_capacity_bytes"
_PUSHES = "registry_slo_registry_manifest_pushes_total"
_PROJECTION_DAYS = 30


def _storage_row(board: Board, ctx: DashboardContext) -> None:
    board.row("Storage (M7) and supply chain (M10)")
    alert = ctx.storage_threshold
    steps: list[Step] = [(None, "green"), (alert, "orange"), (min(0.9, (1 + alert) / 2), "red")]
    # max: two sources of one region (say zot's metrics and its filesystem) see the
    # same storage.
    used = f"max by (region) ({_USED}{sel()})"
    capacity = f"max by (region) ({_CAPACITY}{sel()} > 0)"
    projected = (f"max by (region) (predict_linear({_USED}{sel()}[7d], "
                 f"{_PROJECTION_DAYS * 86400}))")
    board.add(
        time_series(
            "Storage used by region",
            "Bytes the registries use (registry_slo_registry_storage_used_bytes: zot's and "
            "Harbor's own figures, or the filesystem holding the storage, ingest."
            "filesystems), per region (the largest figure where several sources report "
            "one region).",
            [Target(used, "{{region}}")],
            units.BytesIEC, size=(8, 8),
        ),
        bar_gauge(
            "Storage used, share of capacity",
            "Used over capacity per region. The RegistryStorageHigh ticket fires at "
            f"{alert:.0%} (alerting.storage_threshold): time to plan capacity or run "
            "garbage collection.",
            [Target(f"{used}\n/\n{capacity}", "{{region}}", instant=True)],
            units.PercentUnit, size=(8, 8), decimals=1, steps=steps, min_value=0.0,
            max_value=1.0,
        ),
        stat_panel(
            f"Storage projected in {_PROJECTION_DAYS} days",
            f"Share of capacity in use {_PROJECTION_DAYS} days from now if the last 7 days' "
            "growth goes on (predict_linear over 7d of registry_slo_registry_storage_used"
            "_bytes; with less history, over what there is).",
            [Target(f"{projected}\n/\n{capacity}", "{{region}}", instant=True)],
            units.PercentUnit, size=(8, 8), decimals=1, steps=steps,
        ),
    )
    images = _pushes("image")
    for artifact, title in (("signature", "Signed images"), ("sbom", "Images with an SBOM")):
        board.add(stat_panel(
            f"{title} (share of images pushed)",
            f"{artifact.capitalize()}s pushed over images pushed in the time range, per "
            "region, from the registries' logs (registry_slo_registry_manifest_pushes_total"
            ": cosign's sha256-<digest>.sig and .sbom tags against other tagged manifest "
            "pushes). Where signatures live elsewhere it shows 0%: known only where the "
            "logs show it.",
            [Target(f"{_pushes(artifact)}\n/\n({images} > 0)", "{{region}}", instant=True)],
            units.PercentUnit, size=(12, 5), decimals=1,
            steps=[(None, "red"), (0.9, "orange"), (1.0, "green")],
        ))
    if ctx.coverage:
        images = f"(registry_slo_coverage_images{sel()} > 0)"
        board.add(bar_gauge(
            "Recent images signed, attested, with an SBOM (coverage check)",
            "Share of the recent images of each checked repository that the registry holds "
            "a signature, an attestation or an SBOM for (the coverage check asks the "
            "referrers API, else reads the sha256-<hex> index and cosign's tags).",
            [Target(f"registry_slo_coverage_{kind}_images{sel()}\n/\n{images}",
                    f"{{{{region}}}} {{{{repository}}}} {label}", instant=True)
             for kind, label in (("signed", "signed"), ("attested", "attested"),
                                 ("sbom", "SBOM"))],
            units.PercentUnit, size=(24, 6), decimals=0, min_value=0.0, max_value=1.0,
            steps=[(None, "red"), (0.9, "orange"), (1.0, "green")],
        ))


def _pushes(artifact: str) -> str:
    match = sel(f'artifact="{artifact}"')
    return f"sum by (region) (increase({_PUSHES}{match}[$__range]))"


def build(ctx: DashboardContext, oncall: DashboardRef, debug: DashboardRef
          ) -> models.Dashboard:
    """The Executive dashboard for the configuration ``ctx``."""
    board = Board(
        EXECUTIVE.uid, EXECUTIVE.title,
        "Are the registries meeting their SLOs, and how much error budget is left? For "
        "platform leads: one row per SLO, thresholds at its objective.",
        [oncall, debug], variables(),
    )
    board.row("Overview")
    everything = slo_sel()
    board.add(
        stat_panel(
            "SLOs within budget",
            "Share of the selected SLO-and-region pairs whose error budget for the "
            "current period is not overspent (slo:period_error_budget_remaining:ratio "
            ">= 0).",
            [Target(f"(count({_REMAINING}{everything} >= 0) or vector(0))\n"
                    f"/\ncount({_REMAINING}{everything})", instant=True)],
            units.PercentUnit, decimals=0, steps=[(None, "red"), (1.0, "green")],
            links=[oncall],
        ),
        stat_panel(
            "Pages firing",
            "Alerts with severity=page firing now in the selected regions (SLO burn "
            "rates, blob integrity). Open the on-call dashboard to act on them.",
            [Target('count(ALERTS{alertstate="firing",severity="page",' + REGION + "})"
                    "\nor vector(0)", instant=True)],
            units.Short, decimals=0, steps=[(None, "green"), (1.0, "red")], links=[oncall],
        ),
        bar_gauge(
            "Error budget remaining by SLO and region",
            "Share of each SLO's error budget for its period still unspent. Red: "
            "overspent (the SLO is missed), orange: under 25% left.",
            [Target(f"{_REMAINING}{everything}", "{{sloth_slo}} · {{region}}",
                    instant=True)],
            units.PercentUnit, decimals=1, steps=_BUDGET_STEPS, min_value=-1.0,
            max_value=1.0,
        ),
    )
    _traffic_row(board, ctx)
    _storage_row(board, ctx)
    for slo in ctx.slos:
        _slo_row(board, slo, oncall)
    return board.build()
