"""History for a real Prometheus: the exporter's probe series, written as OpenMetrics from
known probe runs and turned into TSDB blocks by ``promtool tsdb create-blocks-from
openmetrics``, so a test or benchmark can query weeks of data that took seconds to make.

Each (region, probe) gets what the exporter exports for it, as its scrapes would have
stored them at every run: ``registry_slo_probe_requests_total``,
``registry_slo_probe_failures_total`` by reason and the duration histogram.
"""

from __future__ import annotations

import bisect
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = ["BUCKETS", "DAY", "ProbeRun", "create_blocks", "write_probe_series"]

DAY = 86400
BUCKETS = ("0.25", "1.0", "2.0", "5.0", "10.0", "+Inf")
"""The ``le`` labels written (a subset of the exporter's; SLO thresholds must be one)."""
_REASONS = ("timeout", "server_error")
_FAMILIES = ("registry_slo_probe_requests counter", "registry_slo_probe_failures counter",
             "registry_slo_probe_duration_seconds histogram")


@dataclass(frozen=True, slots=True)
class ProbeRun:
    """One run: when it ended (Unix seconds), why it failed (``None``: it succeeded),
    how long it took."""

    at: float
    failed: str | None
    seconds: float


@dataclass(frozen=True, slots=True)
class _Cumulative:
    """A (region, probe)'s counters at the start and after each run."""

    labels: str
    times: list[float]
    requests: list[int]
    failures: dict[str, list[int]]
    buckets: dict[str, list[int]]
    sums: list[float]


def _cumulative(key: tuple[str, str], runs: Sequence[ProbeRun], start: float) -> _Cumulative:
    region, probe = key
    times, requests, sums = [start], [0], [0.0]
    failures = {reason: [0] for reason in _REASONS}
    buckets = {le: [0] for le in BUCKETS}
    for run in runs:
        times.append(run.at)
        requests.append(requests[-1] + 1)
        sums.append(sums[-1] + run.seconds)
        for reason, values in failures.items():
            values.append(values[-1] + (run.failed == reason))
        for le, values in buckets.items():
            values.append(values[-1] + (le == "+Inf" or run.seconds <= float(le)))
    labels = f'region="{region}",probe="{probe}",job="registry-slo",instance="exporter:9731"'
    return _Cumulative(labels, times, requests, failures, buckets, sums)


def _day(c: _Cumulative, first: int, last: int, out: dict[str, list[str]]) -> None:
    """Samples ``first`` to ``last - 1`` of ``c``, by family."""
    span = range(first, last)
    out["registry_slo_probe_requests counter"].extend(
        f"registry_slo_probe_requests_total{{{c.labels}}} {c.requests[i]} {c.times[i]:.0f}\n"
        for i in span)
    for reason, values in c.failures.items():
        out["registry_slo_probe_failures counter"].extend(
            f'registry_slo_probe_failures_total{{{c.labels},reason="{reason}"}} '
            f"{values[i]} {c.times[i]:.0f}\n" for i in span)
    histogram = out["registry_slo_probe_duration_seconds histogram"]
    for i in span:
        at = f"{c.times[i]:.0f}"
        histogram.extend(f'registry_slo_probe_duration_seconds_bucket{{{c.labels},le="{le}"}} '
                         f"{values[i]} {at}\n" for le, values in c.buckets.items())
        histogram.append(f"registry_slo_probe_duration_seconds_count{{{c.labels}}} "
                         f"{c.buckets['+Inf'][i]} {at}\n")
        histogram.append(f"registry_slo_probe_duration_seconds_sum{{{c.labels}}} "
                         f"{c.sums[i]} {at}\n")


def write_probe_series(directory: Path, runs: Mapping[tuple[str, str], Sequence[ProbeRun]],
                       start: float, end: float) -> list[Path]:
    """OpenMetrics files, one per day from ``start`` to ``end`` (whole days): promtool
    reads its whole input once per 2-hour block it writes, so many small files take
    seconds where one large file takes minutes. Counters start at 0 at ``start``.

    Args:
        runs: (region, probe) → its runs in time order, in ``(start, end]``.
    """
    series = [_cumulative(key, values, start) for key, values in runs.items()]
    files = []
    days = round((end - start) / DAY)
    for day in range(days):
        lo, hi = start + day * DAY, start + (day + 1) * DAY
        families: dict[str, list[str]] = {name: [] for name in _FAMILIES}
        for c in series:
            first = bisect.bisect_left(c.times, lo)
            # The last day also holds the sample at ``end``.
            last = bisect.bisect_right(c.times, hi) if day == days - 1 else \
                bisect.bisect_left(c.times, hi)
            _day(c, first, last, families)
        path = directory / f"day-{day:02d}.om"
        with path.open("w") as out:
            for name, lines in families.items():
                out.write(f"# TYPE {name}\n")
                out.writelines(lines)
            out.write("# EOF\n")
        files.append(path)
    return files


def create_blocks(promtool: str, files: Sequence[Path], blocks: Path) -> None:
    """Turn OpenMetrics files into blocks under ``blocks`` (removing the files)."""
    for source in files:
        done = subprocess.run([promtool, "tsdb", "create-blocks-from", "openmetrics",
                               "--quiet", str(source), str(blocks)],
                              capture_output=True, text=True, timeout=600)
        if done.returncode != 0:
            raise RuntimeError(f"promtool failed on {source}: {done.stderr[-3000:]}")
        source.unlink()
