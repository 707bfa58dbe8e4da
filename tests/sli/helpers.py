"""Shared by the SLI engine tests: a settable clock, a configuration, observations."""

from __future__ import annotations

from typing import Any

from registry_slo.config import Settings
from registry_slo.observation import Observation
from registry_slo.oci import Reason
from registry_slo.sli.engine import SLIEngine

T0 = 1_700_000_040.0


class Clock:
    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def settings(**extra: Any) -> Settings:
    base: dict[str, Any] = {
        "regions": [
            {"name": "east", "url": "http://127.0.0.1:1"},
            {"name": "west", "url": "http://127.0.0.1:2", "replicates_from": "east",
             "probe": {"enabled": ["pull"]}},
        ],
        "slos": [
            {"name": "pull-availability", "sli": {"kind": "probe_success", "probe": "pull"},
             "objective": 99.9},
            {"name": "pull-latency", "sli": {"kind": "probe_latency", "probe": "pull",
                                             "threshold": "2s"}, "objective": 99},
            {"name": "auth", "sli": {"kind": "auth_success"}, "objective": 99.5,
             "period": "28d"},
            {"name": "freshness", "sli": {"kind": "replication_lag", "threshold": "30s"},
             "objective": 99},
        ],
    }
    return Settings(**{**base, **extra})


def probe(region: str, kind: str, success: bool = True, duration: float = 0.1,
          source: str = "probe") -> Observation:
    return Observation(region=region, operation=kind, source=source, success=success,
                       reason=None if success else Reason.CONNECT,
                       duration_seconds=duration, time=T0)


def status_of(engine: SLIEngine, slo: str, region: str) -> Any:
    (found,) = [s for s in engine.evaluate() if s.slo.name == slo and s.region == region]
    return found
