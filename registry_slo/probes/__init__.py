"""Synthetic probes through the OCI Distribution API, and their scheduler."""

from __future__ import annotations

from registry_slo.probes._base import Outcome, Probe, execute
from registry_slo.probes._region import RegionState, client_for
from registry_slo.probes.auth import AuthProbe
from registry_slo.probes.pull import PullProbe, seed_canary
from registry_slo.probes.push import PushProbe
from registry_slo.probes.scheduler import ProbeScheduler, ScheduledProbe

__all__ = [
    "PROBE_TYPES",
    "AuthProbe",
    "Outcome",
    "Probe",
    "ProbeScheduler",
    "PullProbe",
    "PushProbe",
    "RegionState",
    "ScheduledProbe",
    "build_probes",
    "client_for",
    "execute",
    "seed_canary",
]

PROBE_TYPES: dict[str, type[PushProbe] | type[PullProbe] | type[AuthProbe]] = {
    "push": PushProbe,
    "pull": PullProbe,
    "auth": AuthProbe,
}


def build_probes(states: list[RegionState]) -> list[ScheduledProbe]:
    """Every enabled probe of every region, with its schedule."""
    scheduled = []
    for state in states:
        probe_config = state.config.probe
        for kind in probe_config.enabled:
            scheduled.append(
                ScheduledProbe(
                    PROBE_TYPES[kind](state),
                    interval=probe_config.interval,
                    jitter=probe_config.effective_jitter,
                    timeout=probe_config.timeout,
                )
            )
    return scheduled
