"""What the dashboards take from the configuration: SLOs, objectives, thresholds."""

from __future__ import annotations

from dataclasses import dataclass

from registry_slo._units import format_duration
from registry_slo.config import Settings
from registry_slo.generate._model import num
from registry_slo.generate.alerts import NOT_RUNNING_INTERVALS
from registry_slo.generate.indicators import sli_threshold
from registry_slo.sli.windows import BURN_RATE_TIERS, error_budget

__all__ = ["DashboardContext", "SLOView"]


@dataclass(frozen=True)
class SLOView:
    """One SLO as the dashboards show it.

    Attributes:
        name: the ``sloth_slo`` label.
        description: the SLO's description (may be empty).
        kind: the SLI kind (``probe_success`` ...).
        probe: the probe the SLI reads (``None`` for replication lag).
        objective: the objective as a ratio (``0.999``).
        period: the period as a window name (``30d``).
        regions: the regions it applies to.
        threshold: the latency or lag threshold in seconds, if the SLI has one.
        factors: burn-rate factor of each alert tier for this period, fastest first.
    """

    name: str
    description: str
    kind: str
    probe: str | None
    objective: float
    period: str
    regions: tuple[str, ...]
    threshold: float | None
    factors: tuple[float, ...]

    @property
    def budget(self) -> float:
        """The error budget, ``1 - objective``."""
        return error_budget(self.objective)

    @property
    def objective_text(self) -> str:
        """``99.9%``."""
        return f"{num(round(self.objective * 100, 10))}%"


@dataclass(frozen=True)
class DashboardContext:
    """Everything the three dashboards read from the configuration.

    Attributes:
        slos: the SLOs in configuration order.
        regions: every region name.
        lag_alert_threshold: ``alerting.replication_lag_threshold`` (seconds).
        stale_after: seconds after which a probe counts as not running (the longest
            probe interval times the ``RegistryProbeNotRunning`` factor).
        storage_threshold: ``alerting.storage_threshold`` (share of capacity).
        rate_limit_headroom: ``alerting.rate_limit_headroom`` (share of a quota).
        coverage: whether some region runs the coverage check (``coverage:``).
        rollback: whether some region runs the rollback check (``rollback:``).
        kubernetes: whether the kubelet rules are generated (``kubernetes:``).
        gc: whether some region's garbage collector output is read (a
            ``distribution-gc`` log source).
        gc_overdue_after: ``alerting.gc_overdue_after`` (seconds).
    """

    slos: tuple[SLOView, ...]
    regions: tuple[str, ...]
    lag_alert_threshold: float
    stale_after: float
    storage_threshold: float
    rate_limit_headroom: float
    coverage: bool
    rollback: bool
    kubernetes: bool
    gc: bool
    gc_overdue_after: float

    @classmethod
    def from_settings(cls, settings: Settings) -> DashboardContext:
        """Collect the SLOs (with the regions each applies to) and the thresholds."""
        regions_of: dict[str, list[str]] = {}
        specs = {}
        for target in settings.slo_targets():
            regions_of.setdefault(target.slo.name, []).append(target.region)
            specs[target.slo.name] = target.slo
        views = []
        for name, spec in specs.items():
            views.append(SLOView(
                name=name,
                description=spec.description,
                kind=spec.sli.kind,
                probe=spec.sli.probe_name,
                objective=spec.objective_ratio,
                period=format_duration(spec.period_seconds),
                regions=tuple(regions_of[name]),
                threshold=sli_threshold(spec.sli),
                factors=tuple(t.factor(spec.period_seconds) for t in BURN_RATE_TIERS),
            ))
        intervals = [r.probe.interval for r in settings.regions] or [30.0]
        return cls(
            slos=tuple(views),
            regions=tuple(r.name for r in settings.regions),
            lag_alert_threshold=settings.alerting.replication_lag_threshold,
            stale_after=NOT_RUNNING_INTERVALS * max(intervals),
            storage_threshold=settings.alerting.storage_threshold,
            rate_limit_headroom=settings.alerting.rate_limit_headroom,
            coverage=any(r.coverage is not None for r in settings.regions),
            rollback=any(r.rollback is not None for r in settings.regions),
            kubernetes=settings.kubernetes is not None,
            gc=any(not log.reads_traffic for log in settings.ingest.logs),
            gc_overdue_after=settings.alerting.gc_overdue_after,
        )

    def slo_for(self, kind: str, probe: str | None = None) -> SLOView | None:
        """The first SLO of ``kind`` (on ``probe``), if the configuration has one."""
        for slo in self.slos:
            if slo.kind == kind and (probe is None or slo.probe == probe):
                return slo
        return None

    @property
    def page_factor(self) -> float:
        """The lowest fastest-page factor of all SLOs (14.4 for 30d): the red line of
        cross-SLO burn-rate panels (default 14.4 without SLOs)."""
        return min((s.factors[0] for s in self.slos), default=14.4)

    @property
    def slow_page_factor(self) -> float:
        """The lowest second-page-tier factor of all SLOs (6 for 30d)."""
        return min((s.factors[1] for s in self.slos), default=6.0)
