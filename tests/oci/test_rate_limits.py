"""Rate-limit headers (registry_slo.oci._ratelimit): every shape registries send, and
any header text read without an exception."""

from __future__ import annotations

from email.utils import formatdate

import httpx
from hypothesis import given
from hypothesis import strategies as st

from registry_slo.oci import Quota, RateLimits, read_rate_limits

NOW = 1_764_000_000.0


def _read(headers: dict[str, str], status: int = 200) -> tuple[dict[str, Quota], list[str]]:
    bad: list[str] = []
    quotas = read_rate_limits(httpx.Headers(headers), status, NOW, bad.append)
    return {q.policy: q for q in quotas}, bad


def test_docker_hub() -> None:
    quotas, bad = _read({"ratelimit-limit": "100;w=21600", "ratelimit-remaining": "76;w=21600",
                         "docker-ratelimit-source": "203.0.113.7"})
    assert bad == []
    assert quotas == {"default": Quota("default", 100, 76, 21600, None, NOW)}


def test_ietf_draft_08_named_policies() -> None:
    quotas, bad = _read({
        "RateLimit-Policy": '"burst";q=100;w=60, "daily";q=1000;w=86400',
        "RateLimit": '"burst";r=50;t=30, "daily";r=999;t=3600',
    })
    assert bad == []
    assert quotas == {"burst": Quota("burst", 100, 50, 60, 30, NOW),
                      "daily": Quota("daily", 1000, 999, 86400, 3600, NOW)}


def test_older_drafts() -> None:
    quotas, bad = _read({"RateLimit": "limit=100, remaining=50, reset=30"})
    assert bad == [] and quotas == {"default": Quota("default", 100, 50, None, 30, NOW)}
    quotas, bad = _read({"RateLimit-Limit": "10, 10;w=1, 50;w=60", "RateLimit-Remaining": "9",
                         "RateLimit-Reset": "1"})
    assert bad == [] and quotas == {"default": Quota("default", 10, 9, None, 1, NOW)}


def test_a_429_spends_the_quota_until_retry_after() -> None:
    quotas, _ = _read({"Retry-After": "120"}, 429)
    assert quotas == {"default": Quota("default", None, 0, None, 120, NOW)}
    quotas, _ = _read({"Retry-After": formatdate(NOW + 60, usegmt=True)}, 429)
    assert quotas["default"].reset == 60 and quotas["default"].remaining == 0
    quotas, _ = _read({}, 429)  # no header at all: spent, reset unknown
    assert quotas == {"default": Quota("default", None, 0, None, None, NOW)}
    quotas, _ = _read({"ratelimit-limit": "100;w=21600", "ratelimit-remaining": "0;w=21600",
                       "Retry-After": "3600"}, 429)
    assert quotas == {"default": Quota("default", 100, 0, 21600, 3600, NOW)}
    quotas, _ = _read({"Retry-After": "120"}, 503)  # not a rate limit
    assert quotas == {}


def test_unreadable_headers_are_counted_and_the_rest_is_read() -> None:
    quotas, bad = _read({"ratelimit-limit": "100;w=21600", "ratelimit-remaining": "lots",
                         "RateLimit-Policy": '"unterminated;q=5', "RateLimit": "r=-1"})
    assert sorted(bad) == ["ratelimit", "ratelimit-policy", "ratelimit-remaining"]
    assert quotas == {"default": Quota("default", 100, None, 21600, None, NOW)}
    _, bad = _read({"Retry-After": "soon"}, 429)
    assert bad == ["retry-after"]


def test_reset_counts_down_and_then_the_quota_is_restored() -> None:
    clock = [NOW]
    limits = RateLimits(clock=lambda: clock[0])
    limits.observe(httpx.Headers({"RateLimit-Policy": '"h";q=100;w=3600',
                                  "RateLimit": '"h";r=0;t=600'}), 429)
    assert limits.current() == [Quota("h", 100, 0, 3600, 600, NOW)]
    clock[0] = NOW + 599
    assert limits.current()[0].reset == 1 and limits.current()[0].remaining == 0
    clock[0] = NOW + 600
    assert limits.current() == [Quota("h", 100, 100, 3600, None, NOW)]
    # An answer that states only what is left keeps the limit and window known before.
    limits.observe(httpx.Headers({"RateLimit": '"h";r=40;t=100'}), 200)
    assert limits.current() == [Quota("h", 100, 40, 3600, 100, NOW + 600)]
    limits.observe(httpx.Headers({"RateLimit": "what"}), 200)
    assert limits.malformed_counts() == {"ratelimit": 1}


def test_policies_are_bounded() -> None:
    limits = RateLimits(clock=lambda: NOW)
    for i in range(50):
        limits.observe(httpx.Headers({"RateLimit": f'"p{i}";r=1;t=10'}), 200)
    assert len(limits.current()) == 8


HEADER = st.sampled_from(["ratelimit-limit", "ratelimit-remaining", "ratelimit-reset",
                          "ratelimit-policy", "ratelimit", "retry-after"])


@given(st.dictionaries(HEADER, st.text(st.characters(min_codepoint=32, max_codepoint=126),
                                       max_size=60)),
       st.sampled_from([200, 404, 429, 503]))
def test_any_header_text_is_read_or_counted(headers: dict[str, str], status: int) -> None:
    bad: list[str] = []
    quotas = read_rate_limits(httpx.Headers(headers), status, NOW, bad.append)
    assert set(bad) <= set(headers)
    for quota in quotas:
        for value in (quota.limit, quota.remaining, quota.window, quota.reset):
            assert value is None or value >= 0
