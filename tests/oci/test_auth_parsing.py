from __future__ import annotations

import time

import pytest

from registry_slo.oci import Credentials, Meter, metered, parse_www_authenticate, phase


def test_parse_bearer_challenge() -> None:
    header = ('Bearer realm="https://auth.example/token",service="registry.example",'
              'scope="repository:a/b:pull,push",error="insufficient_scope"')
    (challenge,) = parse_www_authenticate(header)
    assert challenge.scheme == "bearer"
    assert challenge.params == {
        "realm": "https://auth.example/token",
        "service": "registry.example",
        "scope": "repository:a/b:pull,push",
        "error": "insufficient_scope",
    }


def test_parse_basic_and_escapes() -> None:
    (challenge,) = parse_www_authenticate('Basic realm="a \\"quoted\\" realm"')
    assert challenge.scheme == "basic" and challenge.params["realm"] == 'a "quoted" realm'


@pytest.mark.parametrize("header", ["", "   ", "Bearer"])
def test_parse_degenerate(header: str) -> None:
    challenges = parse_www_authenticate(header)
    assert all(c.params == {} for c in challenges)


def test_credentials_never_printed() -> None:
    creds = Credentials("prober", "hunter2")
    assert "hunter2" not in repr(creds)
    assert creds.basic_header() == "Basic cHJvYmVyOmh1bnRlcjI="


def test_phases_are_exclusive() -> None:
    meter = Meter()
    with metered(meter), phase("upload"):
        time.sleep(0.02)
        with phase("auth"):
            time.sleep(0.03)
    assert meter.phases["auth"] == pytest.approx(0.03, abs=0.015)
    assert meter.phases["upload"] == pytest.approx(0.02, abs=0.015)


def test_phase_without_meter_is_noop() -> None:
    with phase("x"):
        pass
