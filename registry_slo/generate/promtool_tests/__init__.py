"""``promtool test rules`` files that prove the generated rules behave.

For each SLO, in its first region, from the exporter's own series (sampled at the
``prometheus`` section's scrape interval, 30s by default, one probe run, or one request
for traffic SLIs, per scrape; rules evaluated at its evaluation interval, 1m by default):

- **fresh start**: the series as a fresh, healthy exporter exposes them (failure
  counters at zero, replication lag unknown at first) raise no alert at any evaluation
  of the first hour; then a full outage pages within the :func:`detection_bound`.
- **outage**: six healthy hours, then every probe fails (or is slow, or replication is
  behind). The 1h/5m page fires within the :func:`detection_bound` (2 minutes at 99.9%)
  and resolves within 6 minutes of recovery; the 6h/30m page fires too when the outage
  crosses its threshold; every page is gone within :func:`all_pages_bound` (31 minutes).
- **steady burns** (:func:`burn_scenarios`): 0.5x the budget (0.05% errors at 99.9%),
  2x, and one rate in every gap between the period's factors. Exactly the rows whose
  factor is below the rate fire; the recorded burn rate and budget remaining are right.
- **absent**: without any series the SLI-absent alert fires after 10 minutes in every
  region of the SLO.

Steady rates are modelled as fractional counter increments (an ideal steady rate); the
outage uses integer counters, with the failure series appearing only at the first
failure (how a counter of an unknown label value is born), the fresh start with them
created at zero (how the exporter creates every series an alert reads). Replication
lag, sampled once per evaluation, has no steady scenarios.

The registry alerts get their own file (:func:`registry_test_file`): a fresh start of
every region (no alert in the first hour), probes not running
(stalled and never run), skipped runs, blob integrity errors, rejected credentials,
storage, authentication failure spikes, expiring certificates, moved protected tags (in
the first region), and replication lag (in the first mirror).

The kubelet rules (``kubernetes:``) get theirs too (:func:`kubelet_test_file`).

Modules: ``_series`` (promtool's notation, timing, the shape of a test), ``_slo``,
``_registry`` and ``_kubelet`` (the scenarios).
"""

from __future__ import annotations

from registry_slo.generate.promtool_tests._kubelet import kubelet_test_file
from registry_slo.generate.promtool_tests._registry import registry_test_file
from registry_slo.generate.promtool_tests._series import (
    DEFAULT_TIMING,
    Timing,
    encode_values,
)
from registry_slo.generate.promtool_tests._slo import (
    all_pages_bound,
    burn_scenarios,
    detection_bound,
    slo_test_file,
)

__all__ = [
    "DEFAULT_TIMING",
    "Timing",
    "all_pages_bound",
    "burn_scenarios",
    "detection_bound",
    "encode_values",
    "kubelet_test_file",
    "registry_test_file",
    "slo_test_file",
]
