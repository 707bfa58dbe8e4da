"""``promtool test rules`` files that prove the generated rules behave.

For each SLO, in its first region, from the exporter's own series (scraped every 30s,
one probe run, or one request for traffic SLIs, per scrape, rules evaluated every
minute):

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
outage uses the integer counters exactly as the exporter emits them, including the
failure series appearing only at the first failure. Replication lag, sampled once per
evaluation, has the outage and absent scenarios only.

The registry alerts get their own file (:func:`registry_test_file`): probes not running
(stalled and never run), skipped runs, blob integrity errors, rejected credentials,
storage, authentication failure spikes, expiring certificates, moved protected tags (in
the first region), and replication lag (in the first mirror).

Modules: ``_series`` (promtool's notation, timing, the shape of a test), ``_slo`` and
``_registry`` (the scenarios).
"""

from __future__ import annotations

from registry_slo.generate.promtool_tests._registry import registry_test_file
from registry_slo.generate.promtool_tests._series import (
    EVALUATION_INTERVAL,
    SCRAPE_INTERVAL,
    encode_values,
)
from registry_slo.generate.promtool_tests._slo import (
    all_pages_bound,
    burn_scenarios,
    detection_bound,
    slo_test_file,
)

__all__ = [
    "EVALUATION_INTERVAL",
    "SCRAPE_INTERVAL",
    "all_pages_bound",
    "burn_scenarios",
    "detection_bound",
    "encode_values",
    "registry_test_file",
    "slo_test_file",
]
