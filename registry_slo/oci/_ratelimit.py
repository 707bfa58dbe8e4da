"""Rate-limit headroom from a registry's answers (guide F9: CI flakiness from rate limits).

Registries that meter requests say how much is left in response headers. Three shapes
are read, from any answer that has them:

- Docker Hub and the IETF draft up to -07: ``RateLimit-Limit: 100;w=21600``,
  ``RateLimit-Remaining: 76;w=21600`` and ``RateLimit-Reset: 30`` (Docker Hub writes the
  names in lower case, as HTTP allows); the first list member is the quota, ``w`` its
  window in seconds. Policy ``default``.
- The IETF draft from -08 (structured fields, RFC 8941): ``RateLimit-Policy:
  "default";q=100;w=10`` (quota ``q`` per window ``w``, one member per named policy) and
  ``RateLimit: "default";r=50;t=30`` (``r`` remaining, ``t`` seconds until reset).
- ``Retry-After`` on a 429 (seconds or an HTTP date): the quota is spent until then.

A header that cannot be read is counted by name and otherwise ignored: a probe never
fails because of one.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from email.utils import parsedate_to_datetime

__all__ = ["DEFAULT_POLICY", "MAX_POLICIES", "Quota", "RateLimits", "read_rate_limits"]

DEFAULT_POLICY = "default"
"""The policy name of headers that name none."""
MAX_POLICIES = 8
"""Policies kept per registry: a registry cannot grow the exporter's series without end."""

_INTEGER = re.compile(r"\d{1,15}")
_TOKEN = re.compile(r"[A-Za-z*][A-Za-z0-9:/!#$%&'*+\-.^_`|~]{0,63}")
_KEY = re.compile(r"[a-z*][a-z0-9_\-.*]{0,63}")
_STRING = re.compile(r'"((?:[ !#-\[\]-~]|\\["\\]){0,64})"')


class Malformed(ValueError):
    """A rate-limit header that cannot be read."""


@dataclass(frozen=True, slots=True)
class Quota:
    """What a registry last said of one rate-limit policy.

    Attributes:
        policy: the policy's name (``default`` when the headers name none).
        limit: requests allowed per window.
        remaining: requests left in the current window.
        window: the window in seconds.
        reset: seconds until the quota is restored, as of ``at``.
        at: Unix time of the answer.
    """

    policy: str
    limit: float | None = None
    remaining: float | None = None
    window: float | None = None
    reset: float | None = None
    at: float = 0.0


def _members(value: str) -> list[tuple[str | None, dict[str, str]]]:
    """An RFC 8941 list of items with parameters: ``[(bare item, {key: value})]``;
    the bare item is a token, a string (unquoted) or an integer (as text)."""
    out: list[tuple[str | None, dict[str, str]]] = []
    for raw in value.split(","):  # neither tokens nor the strings we accept hold commas
        member = raw.strip()
        if not member:
            raise Malformed("empty list member")
        item, *params = member.split(";")
        item = item.strip()
        name: str | None
        if (found := _STRING.fullmatch(item)) is not None:
            name = found.group(1).replace('\\"', '"').replace("\\\\", "\\")
        elif _TOKEN.fullmatch(item) or _INTEGER.fullmatch(item):
            name = item
        else:
            raise Malformed(f"unreadable item {item[:40]!r}")
        values: dict[str, str] = {}
        for param in params:
            key, sep, text = param.strip().partition("=")
            if not _KEY.fullmatch(key):
                raise Malformed(f"unreadable parameter {param[:40]!r}")
            values[key] = text.strip() if sep else "?1"
        out.append((name, values))
    return out


def _number(text: str | None) -> float | None:
    if text is None:
        return None
    if not _INTEGER.fullmatch(text):
        raise Malformed(f"not a non-negative integer: {text[:40]!r}")
    return float(text)


def _first_integer(value: str) -> tuple[float, float | None]:
    """``100;w=21600`` (a draft-07 quota) → ``(100, 21600)``."""
    item, params = _members(value)[0]
    return float(_number(item) or 0.0), _number(params.get("w"))


def _retry_after(value: str, now: float) -> float:
    value = value.strip()
    if _INTEGER.fullmatch(value):
        return float(value)
    try:
        when = parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError, IndexError, OverflowError) as exc:
        raise Malformed(f"not seconds or an HTTP date: {value[:40]!r}") from exc
    return max(0.0, when - now)


def read_rate_limits(headers: Mapping[str, str], status: int, now: float,
                     malformed: Callable[[str], None]) -> list[Quota]:
    """The quotas one answer states.

    Args:
        headers: the answer's headers (case-insensitive, as httpx keeps them).
        status: its status code (``Retry-After`` counts on a 429 only).
        now: Unix time it arrived.
        malformed: called with the lower-case name of each header that cannot be read.

    Returns:
        One :class:`Quota` per policy the answer names (empty: it names none).
    """
    quotas: dict[str, Quota] = {}

    def update(policy: str, *, limit: float | None = None, remaining: float | None = None,
               window: float | None = None, reset: float | None = None) -> None:
        q = quotas.get(policy) or Quota(policy, at=now)
        quotas[policy] = Quota(
            policy, q.limit if limit is None else limit,
            q.remaining if remaining is None else remaining,
            q.window if window is None else window, q.reset if reset is None else reset, now)

    def attempt(name: str, read: Callable[[str], None]) -> None:
        value = headers.get(name)
        if value is None:
            return
        try:
            read(value)
        except Malformed:
            malformed(name)

    def draft7_limit(value: str) -> None:
        limit, window = _first_integer(value)
        update(DEFAULT_POLICY, limit=limit, window=window)

    def draft7_remaining(value: str) -> None:
        remaining, window = _first_integer(value)
        update(DEFAULT_POLICY, remaining=remaining, window=window)

    def draft7_reset(value: str) -> None:
        update(DEFAULT_POLICY, reset=_first_integer(value)[0])

    def policies(value: str) -> None:
        for name, params in _members(value):
            if "q" not in params:
                raise Malformed("a policy without its quota (q)")
            update(name or DEFAULT_POLICY, limit=_number(params.get("q")),
                   window=_number(params.get("w")))

    def state(value: str) -> None:
        pairs = [member.strip().partition("=") for member in value.split(",")]
        if all(key.strip() in ("limit", "remaining", "reset") and sep for key, sep, _ in pairs):
            # draft-07's dictionary: RateLimit: limit=100, remaining=50, reset=30
            named = {key.strip(): _number(text.strip()) for key, _, text in pairs}
            update(DEFAULT_POLICY, limit=named.get("limit"), remaining=named.get("remaining"),
                   reset=named.get("reset"))
            return
        for name, params in _members(value):
            if "r" not in params:
                raise Malformed("a policy without what remains (r)")
            update(name or DEFAULT_POLICY, remaining=_number(params.get("r")),
                   reset=_number(params.get("t")))

    attempt("ratelimit-limit", draft7_limit)
    attempt("ratelimit-remaining", draft7_remaining)
    attempt("ratelimit-reset", draft7_reset)
    attempt("ratelimit-policy", policies)
    attempt("ratelimit", state)
    if status == 429:
        def spent(value: str) -> None:
            seconds = _retry_after(value, now)
            for policy in list(quotas) or [DEFAULT_POLICY]:
                if quotas.get(policy, Quota(policy)).remaining is None:
                    update(policy, remaining=0.0)
                update(policy, reset=seconds)

        attempt("retry-after", spent)
        if "retry-after" not in headers and not quotas:
            update(DEFAULT_POLICY, remaining=0.0)
    return list(quotas.values())


class RateLimits:
    """The latest quota of each policy of one registry, and unreadable headers counted
    (thread-safe: probes write, scrapes read).

    Args:
        clock: Unix time.
    """

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self._quotas: dict[str, Quota] = {}
        self.malformed: dict[str, int] = {}
        """Unreadable headers seen, by lower-case header name."""
        self._lock = threading.Lock()

    def _count_malformed(self, name: str) -> None:
        self.malformed[name] = self.malformed.get(name, 0) + 1

    def observe(self, headers: Mapping[str, str], status: int) -> None:
        """Read one answer's headers."""
        now = self.clock()
        with self._lock:
            for quota in read_rate_limits(headers, status, now, self._count_malformed):
                previous = self._quotas.get(quota.policy)
                if previous is None and len(self._quotas) >= MAX_POLICIES:
                    continue
                if previous is not None:  # keep what this answer did not restate
                    quota = replace(
                        quota,
                        limit=quota.limit if quota.limit is not None else previous.limit,
                        window=quota.window if quota.window is not None else previous.window)
                self._quotas[quota.policy] = quota

    def current(self) -> list[Quota]:
        """Every policy as of now: ``reset`` counts down from the answer; once it has
        passed, the quota is restored (``remaining`` is the limit, or unknown)."""
        now = self.clock()
        with self._lock:
            quotas = list(self._quotas.values())
        out = []
        for quota in quotas:
            reset = quota.reset
            if reset is not None:
                left = reset - (now - quota.at)
                if left <= 0:
                    quota = replace(quota, remaining=quota.limit, reset=None)
                else:
                    quota = replace(quota, reset=left)
            out.append(quota)
        return sorted(out, key=lambda q: q.policy)

    def malformed_counts(self) -> dict[str, int]:
        """Unreadable headers seen so far, by name."""
        with self._lock:
            return dict(self.malformed)
