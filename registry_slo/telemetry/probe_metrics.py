"""The per-(region, probe) series: a prometheus-client collector with a fast text path.

There are about 200 series per region; with hundreds of regions, prometheus-client's
generic exposition (a ``Sample`` per line, label names validated and escaped on every
line) takes half a second per scrape. These series have a fixed shape, so we keep their
values in plain slots, pre-format each label set once, and write the exposition text
directly. :meth:`ProbeMetrics.collect` yields the same data as standard metric families
(the reference: tests compare both renderings), used by ``get_sample_value`` and any
other prometheus-client consumer.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from prometheus_client.samples import Exemplar
from prometheus_client.utils import floatToGoString

from registry_slo.observation import Observation
from registry_slo.oci import Reason

__all__ = ["ProbeMetrics"]

_CACHED = "Probes run on a schedule; this is the result of the last run, not of the scrape."


def _fmt(value: float) -> str:
    return floatToGoString(value)  # type: ignore[no-any-return,no-untyped-call]


def _labels(pairs: Sequence[tuple[str, str]]) -> str:
    def escape(value: str) -> str:
        return value.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")

    return ",".join(f'{k}="{escape(v)}"' for k, v in pairs)


class _Histogram:
    """Bucket counts (not cumulative), sum, and the last exemplar of each bucket."""

    __slots__ = ("counts", "exemplars", "prefixes", "sum")

    def __init__(self, size: int) -> None:
        self.counts = [0] * (size + 1)  # the last one is +Inf
        self.sum = 0.0
        self.exemplars: list[Exemplar | None] = [None] * (size + 1)
        self.prefixes: list[str] | None = None  # rendered line starts, built once

    def observe(self, bounds: Sequence[float], value: float, exemplar: Exemplar | None) -> None:
        index = bisect_left(bounds, value)
        self.counts[index] += 1
        self.sum += value
        if exemplar is not None:
            self.exemplars[index] = exemplar


@dataclass
class _Series:
    """Everything recorded for one (region, probe)."""

    labels: tuple[tuple[str, str], ...]
    text: str  # pre-formatted labels
    duration: _Histogram
    requests: float = 0.0
    skipped: float = 0.0
    success: float | None = None
    last_duration: float | None = None
    last_run: float | None = None
    sent: float = 0.0
    received: float = 0.0
    failures: dict[str, float] = field(default_factory=dict)
    phases: dict[str, _Histogram] = field(default_factory=dict)


class ProbeMetrics(Collector):
    """The probe result series.

    Args:
        buckets: histogram boundaries (seconds) of run and phase durations.
    """

    def __init__(self, buckets: Sequence[float]) -> None:
        self.bounds = tuple(float(b) for b in buckets)
        self._le = [_fmt(b) for b in self.bounds] + ["+Inf"]
        self._series: dict[tuple[str, str], _Series] = {}

    def _get(self, region: str, probe: str) -> _Series:
        series = self._series.get((region, probe))
        if series is None:
            pairs = (("region", region), ("probe", probe))
            series = _Series(pairs, _labels(pairs), _Histogram(len(self.bounds)))
            # Every reason at zero from the start: rate() cannot see a counter's first
            # increment when the series appears at 1.
            series.failures = dict.fromkeys(map(str, Reason), 0.0)
            self._series[(region, probe)] = series
        return series

    def configure(self, region: str, probe: str) -> None:
        """Declare a scheduled probe, so its series exist (at zero) before the first run."""
        self._get(region, probe)

    def skipped(self, region: str, probe: str) -> None:
        """Count a scheduled run that was skipped."""
        self._get(region, probe).skipped += 1

    def record(self, observation: Observation, exemplar: Exemplar | None = None) -> None:
        """Account one probe result (``exemplar``: e.g. the run's trace id)."""
        series = self._get(observation.region, observation.operation)
        series.requests += 1
        if not observation.success:
            reason = str(observation.reason) if observation.reason else "protocol"
            series.failures[reason] = series.failures.get(reason, 0.0) + 1
        series.duration.observe(self.bounds, observation.duration_seconds, exemplar)
        for name, seconds in observation.phases.items():
            histogram = series.phases.get(name)
            if histogram is None:
                histogram = series.phases[name] = _Histogram(len(self.bounds))
            histogram.observe(self.bounds, seconds, None)
        series.success = 1.0 if observation.success else 0.0
        series.last_duration = observation.duration_seconds
        series.last_run = observation.time
        series.sent += observation.bytes_sent
        series.received += observation.bytes_received

    # -- the standard collector interface --------------------------------------------

    def collect(self) -> Iterable[Metric]:
        """The series as prometheus-client metric families."""
        all_series = [self._series[k] for k in sorted(self._series)]
        names = ["region", "probe"]

        configured = GaugeMetricFamily("registry_slo_probes_configured", _HELP["configured"],
                                       labels=names)
        requests = CounterMetricFamily("registry_slo_probe_requests", _HELP["requests"],
                                       labels=names)
        skipped = CounterMetricFamily("registry_slo_probe_skipped", _HELP["skipped"],
                                      labels=names)
        failures = CounterMetricFamily("registry_slo_probe_failures", _HELP["failures"],
                                       labels=[*names, "reason"])
        success = GaugeMetricFamily("registry_slo_probe_success", _HELP["success"],
                                    labels=names)
        last_duration = GaugeMetricFamily("registry_slo_probe_last_duration_seconds",
                                          _HELP["last_duration"], labels=names)
        last_run = GaugeMetricFamily("registry_slo_probe_last_run_timestamp_seconds",
                                     _HELP["last_run"], labels=names)
        moved = CounterMetricFamily("registry_slo_probe_bytes", _HELP["bytes"],
                                    labels=[*names, "direction"])
        duration = HistogramMetricFamily("registry_slo_probe_duration_seconds",
                                         _HELP["duration"], labels=names)
        phase = HistogramMetricFamily("registry_slo_probe_phase_duration_seconds",
                                      _HELP["phase"], labels=[*names, "phase"])
        for s in all_series:
            values = [v for _, v in s.labels]
            configured.add_metric(values, 1)
            requests.add_metric(values, s.requests)
            skipped.add_metric(values, s.skipped)
            for reason in sorted(s.failures):
                failures.add_metric([*values, reason], s.failures[reason])
            if s.success is not None:
                success.add_metric(values, s.success)
            if s.last_duration is not None:
                last_duration.add_metric(values, s.last_duration)
            if s.last_run is not None:
                last_run.add_metric(values, s.last_run)
            moved.add_metric([*values, "sent"], s.sent)
            moved.add_metric([*values, "received"], s.received)
            duration.add_metric(values, self._cumulative(s.duration), s.duration.sum)
            for name in sorted(s.phases):
                histogram = s.phases[name]
                phase.add_metric([*values, name], self._cumulative(histogram), histogram.sum)
        return [configured, requests, skipped, failures, success, last_duration, last_run,
                moved, duration, phase]

    def _cumulative(
        self, histogram: _Histogram
    ) -> list[tuple[str, float] | tuple[str, float, Exemplar]]:
        out: list[tuple[str, float] | tuple[str, float, Exemplar]] = []
        total = 0
        for le, count, exemplar in zip(self._le, histogram.counts, histogram.exemplars,
                                       strict=True):
            total += count
            out.append((le, total, exemplar) if exemplar is not None else (le, total))
        return out

    # -- the fast path -----------------------------------------------------------------

    def render(self, openmetrics: bool) -> str:
        """The exposition text of every series (without OpenMetrics' ``# EOF``)."""
        return "".join(self._render(openmetrics))

    def _render(self, om: bool) -> Iterator[str]:
        all_series = [self._series[k] for k in sorted(self._series)]
        counter_suffix = "_total"

        def header(name: str, kind: str, key: str) -> str:
            return f"# HELP {name} {_HELP[key]}\n# TYPE {name} {kind}\n"

        def simple(name: str, kind: str, key: str, attr: str) -> Iterator[str]:
            family = name
            sample = name
            if kind == "counter":
                sample = name + counter_suffix
                family = name if om else sample
            yield header(family, kind, key)
            for s in all_series:
                value = getattr(s, attr)
                if value is not None:
                    yield f"{sample}{{{s.text}}} {_fmt(value)}\n"

        yield header("registry_slo_probes_configured", "gauge", "configured")
        for s in all_series:
            yield f"registry_slo_probes_configured{{{s.text}}} 1.0\n"
        yield from simple("registry_slo_probe_requests", "counter", "requests", "requests")
        yield from simple("registry_slo_probe_skipped", "counter", "skipped", "skipped")

        name = "registry_slo_probe_failures"
        yield header(name if om else name + "_total", "counter", "failures")
        for s in all_series:
            for reason in sorted(s.failures):
                yield (f'{name}_total{{{s.text},reason="{reason}"}} '
                       f"{_fmt(s.failures[reason])}\n")

        yield from simple("registry_slo_probe_success", "gauge", "success", "success")
        yield from simple("registry_slo_probe_last_duration_seconds", "gauge",
                          "last_duration", "last_duration")
        yield from simple("registry_slo_probe_last_run_timestamp_seconds", "gauge",
                          "last_run", "last_run")

        name = "registry_slo_probe_bytes"
        yield header(name if om else name + "_total", "counter", "bytes")
        for s in all_series:
            yield f'{name}_total{{{s.text},direction="sent"}} {_fmt(s.sent)}\n'
            yield f'{name}_total{{{s.text},direction="received"}} {_fmt(s.received)}\n'

        name = "registry_slo_probe_duration_seconds"
        yield header(name, "histogram", "duration")
        for s in all_series:
            yield from self._histogram_lines(name, s.text, s.duration, om)

        name = "registry_slo_probe_phase_duration_seconds"
        yield header(name, "histogram", "phase")
        for s in all_series:
            for phase in sorted(s.phases):
                yield from self._histogram_lines(
                    name, f'{s.text},phase="{phase}"', s.phases[phase], om)

    def _histogram_lines(
        self, name: str, labels: str, histogram: _Histogram, om: bool
    ) -> Iterator[str]:
        prefixes = histogram.prefixes
        if prefixes is None:
            prefixes = [f'{name}_bucket{{{labels},le="{le}"}} ' for le in self._le]
            prefixes += [f"{name}_count{{{labels}}} ", f"{name}_sum{{{labels}}} "]
            histogram.prefixes = prefixes
        total = 0
        for index, count in enumerate(histogram.counts):
            total += count
            exemplar = histogram.exemplars[index]
            if om and exemplar is not None:
                ex_labels = _labels(sorted(exemplar.labels.items()))
                stamp = "" if exemplar.timestamp is None else f" {exemplar.timestamp}"
                yield (f"{prefixes[index]}{total}.0 # {{{ex_labels}}} "
                       f"{_fmt(exemplar.value)}{stamp}\n")
            else:
                yield f"{prefixes[index]}{total}.0\n"
        yield f"{prefixes[-2]}{total}.0\n"
        yield f"{prefixes[-1]}{_fmt(histogram.sum)}\n"


_HELP = {
    "configured": "Probes scheduled by this exporter, by region and probe (always 1).",
    "requests": "Probe runs attempted, by region and probe. " + _CACHED,
    "skipped": "Scheduled probe runs skipped because the previous run of the same probe "
    "was still in progress or the run was missed.",
    "failures": "Probe runs that failed, by region, probe and reason (timeout, connect, tls, "
    "auth, denied, not_found, rate_limited, server_error, digest_mismatch, protocol).",
    "success": "1 if the last run of the probe succeeded, else 0. " + _CACHED,
    "last_duration": "Duration of the last run of the probe. " + _CACHED,
    "last_run": "Unix time at which the last run of the probe started.",
    "bytes": "Bytes moved by probes (direction: sent, received).",
    "duration": "Duration of probe runs, successful or not. " + _CACHED,
    "phase": "Exclusive time per probe phase (auth, upload, manifest, download).",
}
