"""Reading a Prometheus (or Thanos, Mimir, Cortex) HTTP API for a report: range queries
cut into pieces under Prometheus' 11,000-points-per-series limit, tenant headers,
bearer or Basic auth, a CA file, and clear errors instead of tracebacks."""

from __future__ import annotations

import math
import ssl
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

__all__ = ["MAX_POINTS", "PrometheusSource", "ReportError", "Samples"]

MAX_POINTS = 10_000
"""Points per series a range query asks for at most (Prometheus refuses over 11,000)."""

Samples = dict[tuple[tuple[str, str], ...], dict[float, float]]
"""Series (their sorted labels) → timestamp → value."""


class ReportError(Exception):
    """A report cannot be made as asked; the message says why and what to do."""


@dataclass
class PrometheusSource:
    """A Prometheus HTTP API.

    Attributes:
        url: its base URL (``http://prometheus:9090``, or Thanos' / Mimir's query path
            prefix such as ``http://mimir/prometheus``).
        headers: sent with every query (e.g. ``X-Scope-OrgID`` for Mimir and Cortex).
        bearer_token: sent as ``Authorization: Bearer``.
        basic_auth: user name and password.
        ca_file: CAs to verify its certificate with (else the system's).
        timeout: seconds per query.
        queries: how many queries were sent (for the benchmark and the report's notes).
        waited: seconds spent waiting for Prometheus' answers (summed over the
            threads that query at once).

    Safe to use from several threads (the report queries for several SLOs at once).
    """

    url: str
    headers: Mapping[str, str] = field(default_factory=dict)
    bearer_token: str | None = None
    basic_auth: tuple[str, str] | None = None
    ca_file: Path | None = None
    timeout: float = 120.0
    queries: int = 0
    waited: float = 0.0
    _client: httpx.Client | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def _http(self) -> httpx.Client:
        with self._lock:
            return self._make_client()

    def _make_client(self) -> httpx.Client:
        if self._client is None:
            headers = dict(self.headers)
            if self.bearer_token is not None:
                headers["Authorization"] = f"Bearer {self.bearer_token}"
            verify: ssl.SSLContext | bool = True
            if self.ca_file is not None:
                verify = ssl.create_default_context(cafile=str(self.ca_file))
            self._client = httpx.Client(
                base_url=self.url.rstrip("/"), headers=headers, auth=self.basic_auth,
                verify=verify, timeout=self.timeout, trust_env=False)
        return self._client

    def close(self) -> None:
        """Close the connection pool."""
        if self._client is not None:
            self._client.close()
            self._client = None

    def _get(self, path: str, params: Mapping[str, str]) -> Any:
        started = time.perf_counter()
        try:
            response = self._http().get(
                path, params={**params, "partial_response": "false"})
        except httpx.HTTPError as exc:
            raise ReportError(f"cannot reach Prometheus at {self.url}: {exc}") from None
        finally:
            with self._lock:
                self.queries += 1
                self.waited += time.perf_counter() - started
        try:
            body = response.json()
        except ValueError:
            raise ReportError(
                f"Prometheus at {self.url} answered {response.status_code} with "
                f"{response.headers.get('content-type', 'no content type')}, not its API's "
                "JSON: is the URL the API's base (without /api/v1)?") from None
        if response.status_code in (401, 403):
            raise ReportError(f"Prometheus at {self.url} refused the query "
                              f"({response.status_code}): check the credentials")
        if not isinstance(body, dict) or body.get("status") != "success":
            error = body.get("error") if isinstance(body, dict) else body
            raise ReportError(f"Prometheus at {self.url}: {error}")
        return body["data"]

    def range(self, expr: str, start: float, end: float, step: float) -> Samples:
        """``expr`` at ``start``, ``start + step``, … ``end`` (as many queries as the
        point limit needs).

        Raises:
            ReportError: Prometheus cannot be reached or refuses the query.
        """
        out: Samples = {}
        points = math.floor((end - start) / step) + 1
        for first in range(0, points, MAX_POINTS):
            last = min(points, first + MAX_POINTS) - 1
            data = self._get("/api/v1/query_range", {
                "query": expr, "start": _num(start + first * step),
                "end": _num(start + last * step), "step": _num(step)})
            for series in data.get("result", []):
                labels = tuple(sorted(series.get("metric", {}).items()))
                values = out.setdefault(labels, {})
                for at, value in series.get("values", []):
                    values[float(at)] = float(value)
        return out

    def instant(self, expr: str, at: float) -> Samples:
        """``expr`` at ``at``.

        Raises:
            ReportError: Prometheus cannot be reached or refuses the query.
        """
        data = self._get("/api/v1/query", {"query": expr, "time": _num(at)})
        out: Samples = {}
        for series in data.get("result", []):
            if "value" in series:
                at_, value = series["value"]
                out[tuple(sorted(series.get("metric", {}).items()))] = {
                    float(at_): float(value)}
        return out


def _num(value: float) -> str:
    return f"{value:.3f}"
