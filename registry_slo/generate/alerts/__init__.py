"""Alerting rules: multi-window multi-burn-rate SLO alerts, absent SLIs, registry alerts.

Every rule is an :class:`AlertRule` (name, expression, ``for``, severity, summary,
description, runbook slug, what it is about) and :func:`render_alert` is the one place
that turns a rule into Prometheus' rule dict, adding ``runbook_url`` and
``dashboard_url`` when the configuration gives their base URLs.

SLO alerts (one rule per row of :data:`~registry_slo.sli.windows.BURN_RATE_TIERS`):

========================== ======== ============ ====== ====== =======
alert                      severity windows      factor budget for
========================== ======== ============ ====== ====== =======
RegistrySLOBurnRatePage    page     1h and 5m    14.4   2%     —
RegistrySLOBurnRatePage    page     6h and 30m   6      5%     5m
RegistrySLOBurnRateTicket  ticket   1d and 2h    3      10%    30m
RegistrySLOBurnRateTicket  ticket   3d and 6h    1      10%    1h30m
RegistrySLOSLIAbsent       ticket   5m SLI gone                10m
========================== ======== ============ ====== ====== =======

(factors for a 30d period; they scale with the period.) Each carries ``severity``,
``long_window`` and ``short_window``, the SLO's identity labels and its ``labels``
(``team``, ``tier`` …).

A traffic SLI has no value while nobody uses the registry, which is not a fault: its
absent alert watches the ingest sources it reads instead (``registry_slo_ingest_lines_total``).

Registry alerts (one group per region, labelled with the region): probes not running
or never run, skipped runs, replication lag (mirrors), blob integrity errors, rejected
credentials, storage, authentication failure spikes, expiring certificates (``https``
regions), moved tags of protected repositories, and overdue garbage collection (regions
with a ``distribution-gc`` log source).
"""

from __future__ import annotations

from registry_slo.generate.alerts._registry import (
    AUTH_REJECTED_ALERT,
    AUTH_SPIKE_ALERT,
    AUTH_SPIKE_FOR,
    AUTH_SPIKE_MIN_RATE,
    AUTH_SPIKE_WINDOW,
    BLOB_INTEGRITY_ALERT,
    CERTIFICATE_ALERT,
    COUNTER_WINDOW,
    GC_OVERDUE_ALERT,
    GC_OVERDUE_FOR,
    NEVER_RAN_ALERT,
    NOT_RUNNING_ALERT,
    NOT_RUNNING_INTERVALS,
    RATE_LIMIT_EXHAUSTED_ALERT,
    RATE_LIMIT_EXHAUSTED_FOR,
    RATE_LIMIT_LOW_ALERT,
    RATE_LIMIT_LOW_FOR,
    REPLICATION_LAG_ALERT,
    REPLICATION_LAG_FOR,
    SKIPPED_ALERT,
    SKIPPED_INTERVALS,
    SKIPPED_THRESHOLD,
    STORAGE_ALERT,
    STORAGE_FOR,
    TAG_OVERWRITE_ALERT,
    counter_window,
    gc_sources,
    not_running_after,
    region_alert_rules,
    region_alerts,
    registry_alerts,
    skipped_window,
)
from registry_slo.generate.alerts._rule import AlertRule, render_alert
from registry_slo.generate.alerts._slo import (
    ABSENT_ALERT,
    ABSENT_FOR,
    PAGE_ALERT,
    TICKET_ALERT,
    absent_alert,
    burn_rate_alerts,
)

__all__ = [
    "ABSENT_ALERT",
    "ABSENT_FOR",
    "AUTH_REJECTED_ALERT",
    "AUTH_SPIKE_ALERT",
    "AUTH_SPIKE_FOR",
    "AUTH_SPIKE_MIN_RATE",
    "AUTH_SPIKE_WINDOW",
    "BLOB_INTEGRITY_ALERT",
    "CERTIFICATE_ALERT",
    "COUNTER_WINDOW",
    "GC_OVERDUE_ALERT",
    "GC_OVERDUE_FOR",
    "NEVER_RAN_ALERT",
    "NOT_RUNNING_ALERT",
    "NOT_RUNNING_INTERVALS",
    "PAGE_ALERT",
    "RATE_LIMIT_EXHAUSTED_ALERT",
    "RATE_LIMIT_EXHAUSTED_FOR",
    "RATE_LIMIT_LOW_ALERT",
    "RATE_LIMIT_LOW_FOR",
    "REPLICATION_LAG_ALERT",
    "REPLICATION_LAG_FOR",
    "SKIPPED_ALERT",
    "SKIPPED_INTERVALS",
    "SKIPPED_THRESHOLD",
    "STORAGE_ALERT",
    "STORAGE_FOR",
    "TAG_OVERWRITE_ALERT",
    "TICKET_ALERT",
    "AlertRule",
    "absent_alert",
    "burn_rate_alerts",
    "counter_window",
    "gc_sources",
    "not_running_after",
    "region_alert_rules",
    "region_alerts",
    "registry_alerts",
    "render_alert",
    "skipped_window",
]
