"""One budget for every property-based (fuzz) test.

The normal suite runs a bounded number of examples per target; `scripts/fuzz.sh` sets
``REGISTRY_SLO_FUZZ_EXAMPLES`` (default there: 100,000) and runs the tests marked
``fuzz``. Use it as::

    @pytest.mark.fuzz
    @fuzz_settings()
    @given(...)
    def test_...(...): ...
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

__all__ = ["fuzz_examples", "fuzz_settings"]


def fuzz_examples(default: int = 200) -> int:
    """Examples per target: ``REGISTRY_SLO_FUZZ_EXAMPLES`` when set, else `default`."""
    raw = os.environ.get("REGISTRY_SLO_FUZZ_EXAMPLES", "")
    return int(raw) if raw.strip() else default


def fuzz_settings(default: int = 200) -> settings:
    """Hypothesis settings for a fuzz target: the example budget, no deadline (the
    machine is shared and noisy), derandomized in the normal suite so CI is repeatable."""
    budget_set = bool(os.environ.get("REGISTRY_SLO_FUZZ_EXAMPLES", "").strip())
    return settings(
        max_examples=fuzz_examples(default),
        deadline=None,
        derandomize=not budget_set,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
        database=None,
    )
