"""What the SLOs apply to: the regions, their probes and ingest sources, and the
(SLO, region) targets the SLI engine counts and the generator writes rules for."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import assert_never

from registry_slo.config._slos import (
    SLI,
    AuthSuccessSLI,
    ProbeLatencySLI,
    ProbeSuccessSLI,
    ReplicationLagSLI,
    SLOSpec,
    TrafficLatencySLI,
    TrafficSuccessSLI,
)

__all__ = ["SLOTarget", "SLOTopology"]


@dataclass(frozen=True)
class SLOTarget:
    """One SLO in one region: what the SLI engine counts and the generator writes a rule
    group, alerts and tests for.

    Attributes:
        slo: the SLO.
        region: the region name.
        sources: the ingest sources a traffic SLI counts in this region (``()`` for
            other SLIs).
        probe_interval: seconds between the region's probe runs.
    """

    slo: SLOSpec
    region: str
    sources: tuple[str, ...]
    probe_interval: float

    @property
    def key(self) -> str:
        """``<slo>/<region>``: the target's name in the SLI engine's store."""
        return f"{self.slo.name}/{self.region}"

    @property
    def sloth_id(self) -> str:
        """``<region>-<slo>``: unique per target; the ``sloth_id`` label of its rules."""
        return f"{self.region}-{self.slo.name}"


@dataclass(frozen=True)
class SLOTopology:
    """What SLOs apply to: the configured regions, the probes each runs and how often,
    the mirrors, and the ingest sources that read each region's traffic.

    Attributes:
        region_probes: every configured region → the probes it runs.
        mirrors: the regions that replicate from another (``replicates_from``).
        log_sources: ingest log source name → its region.
        event_sources: notification endpoint name → its region.
        probe_intervals: region → seconds between its probe runs (default 30 s).
    """

    region_probes: Mapping[str, Sequence[str]]
    mirrors: Collection[str] = ()
    log_sources: Mapping[str, str] = field(default_factory=dict)
    event_sources: Mapping[str, str] = field(default_factory=dict)
    probe_intervals: Mapping[str, float] = field(default_factory=dict)

    def sources(self, slo: SLOSpec, region: str) -> tuple[str, ...]:
        """The ingest sources a traffic SLO counts in ``region`` (``()`` for other SLIs):
        its ``sources`` of that region, else the region's log sources."""
        sli = slo.sli
        match sli:
            case TrafficSuccessSLI() | TrafficLatencySLI():
                if sli.sources is None:
                    return tuple(name for name, r in self.log_sources.items() if r == region)
                everything = {**self.log_sources, **self.event_sources}
                return tuple(name for name in sli.sources if everything.get(name) == region)
            case ProbeSuccessSLI() | ProbeLatencySLI() | AuthSuccessSLI() | ReplicationLagSLI():
                return ()
            case _:
                assert_never(sli)

    def regions(self, slo: SLOSpec) -> tuple[str, ...]:
        """The regions an SLO applies to, in configuration order: ``slo.regions`` when
        given; otherwise every region running the SLI's probe, every mirror (replication
        lag), or every region with a source to count (traffic)."""
        if slo.regions is not None:
            return slo.regions
        sli = slo.sli
        match sli:
            case ReplicationLagSLI():
                return tuple(name for name in self.region_probes if name in self.mirrors)
            case TrafficSuccessSLI() | TrafficLatencySLI():
                return tuple(name for name in self.region_probes if self.sources(slo, name))
            case ProbeSuccessSLI() | ProbeLatencySLI() | AuthSuccessSLI():
                return tuple(name for name, probes in self.region_probes.items()
                             if sli.probe_name in probes)
            case _:
                assert_never(sli)

    def targets(self, slos: Sequence[SLOSpec]) -> list[SLOTarget]:
        """Every target the SLOs apply to, in configuration order."""
        return [
            SLOTarget(slo, region, self.sources(slo, region),
                      self.probe_intervals.get(region, 30.0))
            for slo in slos
            for region in self.regions(slo)
        ]

    def _check_region(self, slo: SLOSpec, region: str, key: str) -> None:
        sli = slo.sli
        if region not in self.region_probes:
            raise ValueError(f"{key}.regions: no region named {region!r}")
        match sli:
            case ReplicationLagSLI():
                if region not in self.mirrors:
                    raise ValueError(
                        f"{key}.regions: region {region!r} has no replicates_from, so no "
                        "replication lag"
                    )
            case TrafficSuccessSLI() | TrafficLatencySLI():
                if not self.sources(slo, region):
                    raise ValueError(
                        f"{key}.regions: region {region!r} has no ingest source to count"
                        + (" among sli.sources" if sli.sources is not None else "")
                    )
            case ProbeSuccessSLI() | ProbeLatencySLI() | AuthSuccessSLI():
                if sli.probe_name not in self.region_probes[region]:
                    raise ValueError(
                        f"{key}.regions: region {region!r} does not run the "
                        f"{sli.probe_name} probe"
                    )
            case _:
                assert_never(sli)

    def check(self, slos: Sequence[SLOSpec]) -> None:
        """Check the SLOs against the configuration.

        Raises:
            ValueError: naming the key (``slos[1].regions``) that is wrong.
        """
        seen: set[str] = set()
        everything = {**self.log_sources, **self.event_sources}
        for index, slo in enumerate(slos):
            key = f"slos[{index}]"
            if slo.name in seen:
                raise ValueError(f"{key}.name: the name {slo.name!r} is used twice")
            seen.add(slo.name)
            sli = slo.sli
            if isinstance(sli, TrafficSuccessSLI | TrafficLatencySLI):
                for name in sli.sources or ():
                    if name not in everything:
                        raise ValueError(
                            f"{key}.sli.sources: no ingest log or notification source "
                            f"named {name!r}"
                        )
            for region in slo.regions or ():
                self._check_region(slo, region, key)
            if self.region_probes and not self.regions(slo):
                raise ValueError(f"{key}: no configured region {_applies_to(sli)}")


def _applies_to(sli: SLI) -> str:
    match sli:
        case ReplicationLagSLI():
            return "replicates from another region"
        case TrafficSuccessSLI() | TrafficLatencySLI():
            return "has an ingest source to count (ingest.logs)"
        case ProbeSuccessSLI() | ProbeLatencySLI() | AuthSuccessSLI():
            return f"runs the {sli.probe_name} probe"
        case _:
            assert_never(sli)
