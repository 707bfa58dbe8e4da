"""Records whose values cannot be true are rejected (``bad_value``), never counted.

Each case starts from a line the real registry wrote (fixtures/) and changes one field:
a negative byte count, a status outside 100-599, a non-finite or negative duration, a
time before 2000 or far in the future. Counted, they would have raised inside the metrics
(a negative counter increment, taking the rest of the chunk with it) or poisoned SLIs
(status 0 and -5 counted as successes, durations of infinity)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from registry_slo.ingest.formats import DistributionParser, Rejected, check_values
from registry_slo.ingest.notify import distribution_records
from registry_slo.observation import Observation

from .conftest import FIXTURES


def _good_line() -> dict[str, Any]:
    for raw in (FIXTURES / "distribution-2.8.2.json.log").read_text().splitlines():
        line = json.loads(raw)
        if line.get("http.response.status") == 200 and line.get("msg", "").startswith(
            "response completed"
        ) and "registry-slo" not in line.get("http.request.useragent", ""):
            return dict(line)
    raise AssertionError("the fixture has no plain 200 response line")


@pytest.mark.parametrize(("field", "value"), [
    ("http.response.written", -1000),
    ("http.response.written", 10**30),
    ("http.response.status", -5),
    ("http.response.status", 0),
    ("http.response.status", 999),
    ("http.response.duration", "-3s"),
    ("http.response.duration", "1e400s"),
    ("http.response.duration", "9000h"),
    ("time", "0001-01-01T00:00:00Z"),
    ("time", "2999-01-01T00:00:00Z"),
])
def test_an_impossible_value_is_rejected_as_bad_value(field: str, value: object) -> None:
    parser = DistributionParser("r", "s")
    good = _good_line()
    assert isinstance(parser.parse(json.dumps(good).encode()), Observation)
    with pytest.raises(Rejected) as info:
        parser.parse(json.dumps({**good, field: value}).encode())
    assert info.value.reason in {"bad_value", "missing_field"}, info.value
    assert str(info.value)  # says which value


def test_the_fast_path_checks_values_too() -> None:
    """A flat line with digits only in status and written takes the regex fast path."""
    parser = DistributionParser("r", "s")
    line = json.dumps({**_good_line(), "http.response.status": 999}).encode()
    with pytest.raises(Rejected) as info:
        parser.parse(line)
    assert info.value.reason == "bad_value"


def test_a_notification_of_a_negative_size_is_rejected() -> None:
    envelopes = json.loads((FIXTURES / "distribution-2.8.2.notifications.json").read_text())
    event = next(e for env in envelopes for e in env["body"]["events"]
                 if e.get("action") == "push")
    event["target"]["size"] = -1_000_000
    [(_, result)] = distribution_records({"events": [event]}, "r", "s")
    assert isinstance(result, Rejected) and result.reason == "bad_value"


@given(
    time=st.floats(allow_nan=True, allow_infinity=True),
    status=st.one_of(st.none(), st.integers()),
    duration=st.one_of(st.none(), st.floats(allow_nan=True, allow_infinity=True)),
    sent=st.integers(), received=st.integers(),
)
def test_values_either_pass_in_range_or_are_rejected(
    time: float, status: int | None, duration: float | None, sent: int, received: int,
) -> None:
    try:
        check_values(time, status, duration, sent, received)
    except Rejected as exc:
        reason = exc.reason
    else:
        reason = None
    if reason is not None:
        assert reason == "bad_value"
        return
    assert status is None or 100 <= status <= 599
    assert duration is None or 0 <= duration <= 7 * 86400
    assert 0 <= sent <= 2**53 and 0 <= received <= 2**53
    assert 946_684_800 <= time < float("inf")
