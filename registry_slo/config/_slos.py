"""The ``slos:`` section: service level objectives, their indicators, and what they apply to.

Like the rest of the configuration the models are strict: unknown keys are errors and
every error names the key. Checks that need the configured regions live in
:meth:`SLOTopology.check`, which ``Settings`` calls.

Example::

    slos:
      - name: pull-availability
        sli: {kind: probe_success, probe: pull}
        objective: 99.9
        labels: {team: registry, tier: "1"}
      - name: pull-traffic                 # what users' pulls saw, from ingested logs
        sli: {kind: traffic_success, operations: [pull_manifest, pull_blob]}
        objective: 99.9

Each SLI model says which events it counts and which of them are bad
(:meth:`~ProbeSuccessSLI.bad`); the SLI engine and the generated rules follow that rule.
Code that treats SLI kinds differently dispatches with ``match`` and ``assert_never`` over
:data:`SLI`, so a new kind is named by mypy at every place it must be handled.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Annotated, Any, Literal, assert_never

from pydantic import BeforeValidator, Field, model_validator

from registry_slo._units import Duration, format_duration, human_duration, objective_ratio
from registry_slo.config._base import Strict, require_positive
from registry_slo.observation import Observation
from registry_slo.vocabulary import ALERT_WINDOWS, DAY, OPERATIONS, ProbeKind, Reason

__all__ = [
    "RESERVED_LABELS",
    "SLI",
    "SLO_NAME",
    "AuthSuccessSLI",
    "ProbeLatencySLI",
    "ProbeSLI",
    "ProbeSuccessSLI",
    "ReplicationLagSLI",
    "SLOSpec",
    "TrafficLatencySLI",
    "TrafficSLI",
    "TrafficSuccessSLI",
    "label_name_problem",
    "sli_summary",
]

RESERVED_LABELS = frozenset({
    "alertname", "severity", "region", "probe", "reason", "source_region", "le", "job",
    "instance", "long_window", "short_window", "period", "description", "objective",
})
"""Label names an SLO's ``labels`` may not use: the generator sets them itself."""
_RESERVED_PREFIXES = ("__", "sloth_", "sli_")

SLO_NAME = re.compile(r"[a-z0-9]([a-z0-9-]{0,62})")
"""What an SLO's ``name`` must fully match."""
_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")


def label_name_problem(key: str) -> str | None:
    """Why ``key`` cannot be one of an SLO's ``labels`` (``None``: it can)."""
    if not _LABEL_NAME.fullmatch(key):
        return "not a valid Prometheus label name"
    if key in RESERVED_LABELS or key.startswith(_RESERVED_PREFIXES):
        return "reserved, the generator sets it"
    return None


class ProbeSuccessSLI(Strict):
    """Probe runs that succeed: ``failures / attempts`` of one probe in one region."""

    kind: Literal["probe_success"]
    probe: ProbeKind

    @property
    def probe_name(self) -> str:
        """The ``probe`` label the SLI reads."""
        return self.probe

    def bad(self, observation: Observation) -> bool | None:
        """Whether a run of the probe is a bad event: it failed."""
        return not observation.success


class ProbeLatencySLI(Strict):
    """Probe runs faster than ``threshold`` (successful or not: a timeout is slow).

    ``threshold`` must be a histogram bucket boundary of
    ``registry_slo_probe_duration_seconds`` to generate Prometheus rules.
    """

    kind: Literal["probe_latency"]
    probe: ProbeKind
    threshold: Duration

    @model_validator(mode="after")
    def _check(self) -> ProbeLatencySLI:
        require_positive(self.threshold, "threshold")
        return self

    @property
    def probe_name(self) -> str:
        """The ``probe`` label the SLI reads."""
        return self.probe

    def bad(self, observation: Observation) -> bool | None:
        """Whether a run is a bad event: it took longer than the threshold (failed runs
        count by their duration, as in the generated rules)."""
        return observation.duration_seconds > self.threshold


class AuthSuccessSLI(Strict):
    """Authentication round trips that succeed: the ``auth`` probe's success ratio."""

    kind: Literal["auth_success"]

    @property
    def probe_name(self) -> str:
        """The ``probe`` label the SLI reads (always ``auth``)."""
        return "auth"

    def bad(self, observation: Observation) -> bool | None:
        """Whether an auth probe run is a bad event: it failed."""
        return not observation.success


class ReplicationLagSLI(Strict):
    """The fraction of time a region's replication lag (max over sources) is at most
    ``threshold``, from ``registry_slo_replication_lag_seconds{region,source_region}``."""

    kind: Literal["replication_lag"]
    threshold: Duration

    @model_validator(mode="after")
    def _check(self) -> ReplicationLagSLI:
        require_positive(self.threshold, "threshold")
        return self

    @property
    def probe_name(self) -> None:
        """Replication lag is not a probe's success ratio."""
        return None

    def bad_sample(self, lags: Sequence[float]) -> bool:
        """Whether one sample of the region's lags (one per source, seconds) is bad: any
        is above the threshold or unknown (NaN: no heartbeat seen yet)."""
        # NaN compares false: a bad sample.
        return not all(lag <= self.threshold for lag in lags)


def _check_operations(operations: tuple[str, ...]) -> None:
    if not operations:
        raise ValueError("operations: give at least one operation")
    unknown = [o for o in operations if o not in OPERATIONS]
    if unknown:
        raise ValueError(
            f"operations: unknown operation(s) {', '.join(map(repr, unknown))} "
            f"(known: {', '.join(OPERATIONS)})"
        )
    if len(set(operations)) != len(operations):
        raise ValueError("operations: lists an operation twice")


def _check_sources(sources: tuple[str, ...] | None) -> None:
    if sources is not None and (not sources or len(set(sources)) != len(sources)):
        raise ValueError("sources: give each source once, or leave it out")


class TrafficSuccessSLI(Strict):
    """Registry requests as users made them, read by the ingest sources (logs,
    notifications): bad when the request failed for one of ``errors``.

    The default ``errors`` are the registry's own failures (5xx, and 429: a rate-limited
    pull is a pull users did not get); client errors such as ``auth``, ``denied`` and
    ``not_found`` do not burn the budget. ``sources`` names the ingest sources to count
    (default: the region's log sources; notification endpoints see successful
    operations only).
    """

    kind: Literal["traffic_success"]
    operations: tuple[str, ...]
    errors: tuple[Reason, ...] = (Reason.SERVER_ERROR, Reason.RATE_LIMITED)
    sources: tuple[str, ...] | None = None

    @model_validator(mode="after")
    def _check(self) -> TrafficSuccessSLI:
        _check_operations(self.operations)
        if not self.errors or len(set(self.errors)) != len(self.errors):
            raise ValueError("errors: give each failure reason once, at least one")
        _check_sources(self.sources)
        return self

    @property
    def probe_name(self) -> None:
        """Traffic is not a probe."""
        return None

    def bad(self, observation: Observation) -> bool | None:
        """Whether a request is a bad event: it failed for one of ``errors`` (ingest
        counts a failure without a reason as ``protocol``)."""
        reason = observation.reason or Reason.PROTOCOL
        return not observation.success and reason in self.errors


class TrafficLatencySLI(Strict):
    """Registry requests, read by the ingest sources, served within ``threshold`` (as
    the registry logged their duration; sources that log no duration do not count).

    ``threshold`` must be a bucket boundary of
    ``registry_slo_registry_request_duration_seconds`` to generate Prometheus rules.
    """

    kind: Literal["traffic_latency"]
    operations: tuple[str, ...]
    threshold: Duration
    sources: tuple[str, ...] | None = None

    @model_validator(mode="after")
    def _check(self) -> TrafficLatencySLI:
        _check_operations(self.operations)
        require_positive(self.threshold, "threshold")
        _check_sources(self.sources)
        return self

    @property
    def probe_name(self) -> None:
        """Traffic is not a probe."""
        return None

    def bad(self, observation: Observation) -> bool | None:
        """Whether a request is a bad event (slower than the threshold); ``None`` when
        it does not count (its source logged no duration)."""
        if not observation.timed:
            return None
        return observation.duration_seconds > self.threshold


ProbeSLI = ProbeSuccessSLI | ProbeLatencySLI | AuthSuccessSLI
"""The SLIs read from probe runs."""
TrafficSLI = TrafficSuccessSLI | TrafficLatencySLI
"""The SLIs read from ingested traffic."""

SLI = Annotated[
    ProbeSuccessSLI | ProbeLatencySLI | ReplicationLagSLI | AuthSuccessSLI
    | TrafficSuccessSLI | TrafficLatencySLI,
    Field(discriminator="kind"),
]


def sli_summary(sli: SLI) -> str:
    """The SLI in a few words, for pages and docs: ``pull probe success``,
    ``pull probe ≤ 2s``, ``pull_manifest, pull_blob requests served``."""
    match sli:
        case ProbeSuccessSLI() | AuthSuccessSLI():
            return f"{sli.probe_name} probe success"
        case ProbeLatencySLI():
            return f"{sli.probe} probe ≤ {human_duration(sli.threshold)}"
        case ReplicationLagSLI():
            return f"replication lag ≤ {human_duration(sli.threshold)}"
        case TrafficSuccessSLI():
            return f"{', '.join(sli.operations)} requests served"
        case TrafficLatencySLI():
            return f"{', '.join(sli.operations)} requests ≤ {human_duration(sli.threshold)}"
        case _:
            assert_never(sli)


def _label_value(value: Any) -> Any:
    # ``tier: 1`` in YAML is an int; a label value is a string.
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return value


LabelValue = Annotated[str, BeforeValidator(_label_value)]


class SLOSpec(Strict):
    """One service level objective, applied per region.

    Attributes:
        name: lowercase letters, digits and ``-``; the ``sloth_slo`` label.
        description: free text for the info metric, alerts and docs.
        sli: what is measured (``kind`` chooses the indicator).
        objective: the target in percent, e.g. ``99.9``.
        period: the compliance period, whole days (default ``30d``; ``28d`` works).
        regions: the regions the SLO applies to (default: every region that runs the
            SLI's probe; for replication lag every mirror; for traffic every region
            with an ingest source to count).
        labels: metadata such as ``team`` or ``tier``, on the info metric and alerts.
    """

    name: str
    description: str = ""
    sli: SLI
    objective: float
    period: Duration = 30 * DAY
    regions: tuple[str, ...] | None = None
    labels: dict[str, LabelValue] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _check(self) -> SLOSpec:
        if not SLO_NAME.fullmatch(self.name):
            raise ValueError(
                f"name: {self.name!r} must be lowercase letters, digits and '-' "
                "(at most 63 characters)"
            )
        if not 0 < self.objective < 100:
            raise ValueError(f"objective: {self.objective!r} must be a percentage in (0, 100)")
        if self.period % DAY:
            raise ValueError(f"period: {format_duration(self.period)} must be whole days")
        if self.period < ALERT_WINDOWS[-1]:
            raise ValueError(
                f"period: must be at least {format_duration(ALERT_WINDOWS[-1])}, "
                "the longest burn-rate window"
            )
        if self.regions is not None:
            if not self.regions:
                raise ValueError("regions: give at least one region, or leave it out")
            if len(set(self.regions)) != len(self.regions):
                raise ValueError("regions: lists a region twice")
        for key, value in self.labels.items():
            problem = label_name_problem(key)
            if problem is not None:
                raise ValueError(f"labels.{key}: {problem}")
            if not value:
                raise ValueError(f"labels.{key}: must not be empty")
        return self

    @property
    def objective_ratio(self) -> float:
        """The objective as a ratio (``99.9`` → ``0.999``)."""
        return objective_ratio(self.objective)

    @property
    def period_seconds(self) -> int:
        """The period in whole seconds."""
        return int(self.period)
