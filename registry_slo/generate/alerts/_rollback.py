"""The rollback readiness alerts of a region with a ``rollback:`` section (M16).

- ``RegistryRollbackTargetGone`` (page): a protected tag's previous digest — the release
  a rollback goes back to — is no longer in the registry;
- ``RegistryRollbackTargetsMissing`` (ticket): recent rollback targets (digests pulled
  by digest, or pushed under a protected tag) are gone.

Both read the rollback check's gauges, which exist from its first completed run.
"""

from __future__ import annotations

from registry_slo._units import format_duration
from registry_slo.config import PrometheusConfig, RegionConfig
from registry_slo.generate._model import selector
from registry_slo.generate.alerts._rule import AlertRule

__all__ = ["PREVIOUS_MISSING", "ROLLBACK_GONE_ALERT", "ROLLBACK_GONE_FOR",
           "ROLLBACK_MISSING_ALERT", "ROLLBACK_MISSING_FOR", "TARGETS_MISSING",
           "rollback_alert_rules"]

PREVIOUS_MISSING = "registry_slo_rollback_previous_missing"
TARGETS_MISSING = "registry_slo_rollback_targets_missing"
ROLLBACK_GONE_ALERT = "RegistryRollbackTargetGone"
ROLLBACK_MISSING_ALERT = "RegistryRollbackTargetsMissing"
ROLLBACK_GONE_FOR = 300
ROLLBACK_MISSING_FOR = 900


def rollback_alert_rules(region: RegionConfig, prometheus: PrometheusConfig
                         ) -> list[AlertRule]:
    """The region's rollback alerts (none without a ``rollback:`` section)."""
    if region.rollback is None:
        return []
    name = region.name
    sel = selector(region=name)
    return [
        AlertRule(
            name=ROLLBACK_GONE_ALERT,
            expr=f"max by (region, repository, tag) ({PREVIOUS_MISSING}{sel}) == 1\n",
            severity="page",
            summary=(f"the previous release of {{{{ $labels.repository }}}}:"
                     f"{{{{ $labels.tag }}}} in {name} is gone"),
            description=(
                "The digest {{ $labels.tag }} pointed at before its last push is no longer "
                f"in {name} (HEAD of its manifest: 404, for {format_duration(ROLLBACK_GONE_FOR)}"
                "): a rollback of {{ $labels.repository }} would fail (M16). Restore it "
                "from a mirror or backup, and exclude release digests from retention and "
                "garbage collection."
            ),
            runbook="registry-rollback-target-gone",
            about=name,
            for_seconds=prometheus.hold(ROLLBACK_GONE_FOR),
        ),
        AlertRule(
            name=ROLLBACK_MISSING_ALERT,
            expr=f"max by (region, repository) ({TARGETS_MISSING}{sel}) > 0\n",
            severity="ticket",
            summary=f"rollback targets of {{{{ $labels.repository }}}} in {name} are gone",
            description=(
                "Recent digests of {{ $labels.repository }} that deployments pulled by "
                f"digest or that protected tags pointed at are no longer in {name}: "
                "rolling back to them would fail. Check retention policies and garbage "
                "collection (registry_slo_rollback_targets_missing)."
            ),
            runbook="registry-rollback-targets-missing",
            about=name,
            for_seconds=prometheus.hold(ROLLBACK_MISSING_FOR),
        ),
    ]
