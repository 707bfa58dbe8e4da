"""Synthetic probes through the OCI Distribution API, and their scheduler."""

from __future__ import annotations

import socket
from collections.abc import Callable, Collection

from registry_slo.config import Settings
from registry_slo.probes._base import Outcome, Probe, execute
from registry_slo.probes._region import (
    CoverageResults,
    RegionState,
    RepositoryCoverage,
    client_for,
)
from registry_slo.probes.auth import AuthProbe
from registry_slo.probes.cache import ColdCacheProbe, CounterSink
from registry_slo.probes.coverage import CoverageProbe
from registry_slo.probes.heartbeat import HeartbeatWriter, LagTracker, ReplicationReader
from registry_slo.probes.pull import PullProbe, seed_canary
from registry_slo.probes.push import PushProbe
from registry_slo.probes.rollback import (
    RepositoryRollback,
    RollbackProbe,
    RollbackResults,
    RollbackTargets,
    TagRollback,
)
from registry_slo.probes.scheduler import ProbeRecorder, ProbeScheduler, ScheduledProbe

__all__ = [
    "AuthProbe",
    "ColdCacheProbe",
    "CoverageProbe",
    "CoverageResults",
    "HeartbeatWriter",
    "LagTracker",
    "Outcome",
    "Probe",
    "ProbeRecorder",
    "ProbeScheduler",
    "PullProbe",
    "PushProbe",
    "RegionState",
    "ReplicationReader",
    "RepositoryCoverage",
    "RepositoryRollback",
    "RollbackProbe",
    "RollbackResults",
    "RollbackTargets",
    "ScheduledProbe",
    "TagRollback",
    "build_probes",
    "build_regions",
    "client_for",
    "execute",
    "seed_canary",
]


def build_regions(
    settings: Settings, selected: Collection[str] | None = None
) -> dict[str, RegionState]:
    """One :class:`RegionState` per configured region, caches linked to their upstream.

    Args:
        settings: the configuration.
        selected: only these regions, and the upstreams their caches need (default: all).
    """
    wanted = set(selected) if selected is not None else {r.name for r in settings.regions}
    wanted |= {
        r.pull_through_cache_of for r in settings.regions
        if r.name in wanted and r.pull_through_cache_of
    }
    states: dict[str, RegionState] = {}
    for config in settings.regions:  # validation guarantees upstreams are configured
        if config.name in wanted:
            state = states[config.name] = RegionState(config)
            if config.rollback is not None:
                path = settings.state_path / f"rollback-{config.name}.json"
                state.rollback = (RollbackTargets(config.name, config.rollback, path),
                                  RollbackResults())
    for state in states.values():
        if state.config.pull_through_cache_of:
            state.upstream = states[state.config.pull_through_cache_of]
    return states


def build_probes(
    settings: Settings,
    states: dict[str, RegionState],
    on_first_sight: Callable[[LagTracker, float], None] | None = None,
    cache_counters: CounterSink | None = None,
    selected: Collection[str] | None = None,
) -> tuple[list[ScheduledProbe], list[LagTracker]]:
    """Every probe this instance runs, with its schedule, and the lag trackers of mirrors.

    Args:
        settings: the configuration.
        states: from :func:`build_regions` (possibly a subset of the regions).
        on_first_sight: called with the lag of each new heartbeat a mirror shows.
        cache_counters: receives the pull-through caches' own hit/miss counters.
        selected: only these regions' probes (default: every region in ``states``; a
            cache's upstream is in ``states`` for the cache probe, not to be probed).
    """
    probed = {n: s for n, s in states.items() if selected is None or n in selected}
    scheduled: list[ScheduledProbe] = []
    for state in probed.values():
        probe = state.config.probe
        for kind in state.config.probes:
            instance: Probe
            if kind == "push":
                instance = PushProbe(state)
            elif kind == "pull":
                instance = PullProbe(state)
            elif kind == "auth":
                instance = AuthProbe(state)
            else:
                instance = ColdCacheProbe(state, cache_counters)
            scheduled.append(ScheduledProbe(
                instance, probe.interval, probe.effective_jitter, probe.timeout))
        if state.config.coverage is not None:
            coverage = state.config.coverage
            scheduled.append(ScheduledProbe(
                CoverageProbe(state, coverage, state.coverage), coverage.interval,
                coverage.interval * 0.1, coverage.timeout))
        if state.config.rollback is not None and state.rollback is not None:
            rollback = state.config.rollback
            scheduled.append(ScheduledProbe(
                RollbackProbe(state, *state.rollback), rollback.interval,
                rollback.interval * 0.1, rollback.timeout))
    replication = settings.replication
    beat = (replication.heartbeat_interval, replication.heartbeat_interval * 0.1,
            replication.timeout)
    if replication.writes:
        writer = replication.writer or socket.gethostname()
        for source in settings.sources():
            if source.name in probed:
                scheduled.append(ScheduledProbe(
                    HeartbeatWriter(states[source.name], replication.tag, writer), *beat))
    trackers: list[LagTracker] = []
    if replication.reads:
        for region in settings.regions:
            if region.replicates_from and region.name in probed:
                tracker = LagTracker(region.name, region.replicates_from)
                trackers.append(tracker)
                scheduled.append(ScheduledProbe(
                    ReplicationReader(states[region.name], tracker, replication.tag,
                                      on_first_sight),
                    *beat,
                ))
    return scheduled, trackers
