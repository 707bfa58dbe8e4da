"""The probe domain: every run's result, and the health of the schedule.

:class:`ProbingMetrics` is what the probe scheduler reports to (its
:class:`~registry_slo.probes.scheduler.ProbeRecorder`): runs in flight, how late runs
start, and each run's result, kept by :class:`ProbeMetrics`.

:class:`ProbeMetrics` holds the per-(region, probe) series: a prometheus-client
collector with a fast text path.

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

from prometheus_client import CollectorRegistry, Gauge, Histogram, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.openmetrics.exposition import generate_latest as openmetrics_latest
from prometheus_client.registry import Collector
from prometheus_client.samples import Exemplar
from prometheus_client.utils import floatToGoString

from registry_slo.observation import Observation
from registry_slo.telemetry._series import CountInternalError
from registry_slo.vocabulary import (
    DURATION_BUCKETS,
    PROBE_DURATION,
    PROBE_FAILURES,
    PROBE_LAST_RUN,
    PROBE_REQUESTS,
    PROBE_SKIPPED,
    PROBES_CONFIGURED,
    Component,
    Reason,
)

__all__ = ["ProbeMetrics", "ProbingMetrics"]

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

        configured = GaugeMetricFamily(PROBES_CONFIGURED.name, _HELP["configured"],
                                       labels=names)
        requests = CounterMetricFamily(PROBE_REQUESTS.name, _HELP["requests"],
                                       labels=names)
        skipped = CounterMetricFamily(PROBE_SKIPPED.name, _HELP["skipped"],
                                      labels=names)
        failures = CounterMetricFamily(PROBE_FAILURES.name, _HELP["failures"],
                                       labels=[*names, "reason"])
        success = GaugeMetricFamily("registry_slo_probe_success", _HELP["success"],
                                    labels=names)
        last_duration = GaugeMetricFamily("registry_slo_probe_last_duration_seconds",
                                          _HELP["last_duration"], labels=names)
        last_run = GaugeMetricFamily(PROBE_LAST_RUN.name,
                                     _HELP["last_run"], labels=names)
        moved = CounterMetricFamily("registry_slo_probe_bytes", _HELP["bytes"],
                                    labels=[*names, "direction"])
        duration = HistogramMetricFamily(PROBE_DURATION.name,
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

        yield header(PROBES_CONFIGURED.name, "gauge", "configured")
        for s in all_series:
            yield f"{PROBES_CONFIGURED}{{{s.text}}} 1.0\n"
        yield from simple(PROBE_REQUESTS.name, "counter", "requests", "requests")
        yield from simple(PROBE_SKIPPED.name, "counter", "skipped", "skipped")

        name = PROBE_FAILURES.name
        yield header(name if om else name + "_total", "counter", "failures")
        for s in all_series:
            for reason in sorted(s.failures):
                yield (f'{name}_total{{{s.text},reason="{reason}"}} '
                       f"{_fmt(s.failures[reason])}\n")

        yield from simple("registry_slo_probe_success", "gauge", "success", "success")
        yield from simple("registry_slo_probe_last_duration_seconds", "gauge",
                          "last_duration", "last_duration")
        yield from simple(PROBE_LAST_RUN.name, "gauge",
                          "last_run", "last_run")

        name = "registry_slo_probe_bytes"
        yield header(name if om else name + "_total", "counter", "bytes")
        for s in all_series:
            yield f'{name}_total{{{s.text},direction="sent"}} {_fmt(s.sent)}\n'
            yield f'{name}_total{{{s.text},direction="received"}} {_fmt(s.received)}\n'

        name = PROBE_DURATION.name
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


class ProbingMetrics(Collector):
    """The probe domain's series, and the probe scheduler's recorder.

    ``registry_slo_probe_runs_in_flight`` and ``registry_slo_probe_schedule_delay_seconds``
    (the schedule's health), then every run's result (:attr:`results`).

    Args:
        count_internal_error: counts an exception of an observation sink.
        buckets: histogram boundaries (seconds) of run and phase durations.
    """

    def __init__(
        self,
        count_internal_error: CountInternalError,
        buckets: Sequence[float] = DURATION_BUCKETS,
    ) -> None:
        self.results = ProbeMetrics(buckets)
        """Per-(region, probe) results (M1-M5, M11)."""
        self._count_internal_error = count_internal_error
        self._scheduling = CollectorRegistry()
        self.in_flight = Gauge(
            "registry_slo_probe_runs_in_flight",
            "Probe runs currently in progress.",
            registry=self._scheduling,
        )
        self.schedule_delay = Histogram(
            "registry_slo_probe_schedule_delay_seconds",
            "How late probe runs start compared with their scheduled time.",
            buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
            registry=self._scheduling,
        )

    # -- the probe scheduler's recorder --------------------------------------------------

    def configure(self, region: str, probe: str) -> None:
        """Declare a scheduled probe, so its series exist (at zero) before the first run.

        Args:
            region: the region it probes.
            probe: the ``probe`` label.
        """
        self.results.configure(region, probe)

    def run_started(self) -> None:
        """A run started."""
        self.in_flight.inc()

    def run_finished(self, observation: Observation | None) -> None:
        """A run that :meth:`run_started` ended.

        Args:
            observation: its result (``None``: cancelled before it had one).
        """
        self.in_flight.dec()
        if observation is not None:
            self.record(observation)

    def record(self, observation: Observation) -> None:
        """Account one probe result; its trace id, when it has one, is the exemplar of
        its duration.

        Args:
            observation: the result.
        """
        exemplar = None
        if observation.trace_id is not None:
            exemplar = Exemplar(
                {"trace_id": observation.trace_id}, observation.duration_seconds,
                observation.time,
            )
        self.results.record(observation, exemplar)

    def skipped(self, region: str, probe: str) -> None:
        """Count a scheduled run that was skipped.

        Args:
            region: the probe's region.
            probe: the ``probe`` label.
        """
        self.results.skipped(region, probe)

    def run_delayed(self, seconds: float) -> None:
        """Observe how late a run started against its schedule.

        Args:
            seconds: the delay (0 when on time).
        """
        self.schedule_delay.observe(seconds)

    def internal_error(self, component: Component) -> None:
        """Count an unexpected exception (``registry_slo_internal_errors_total``).

        Args:
            component: where it happened.
        """
        self._count_internal_error(component)

    # -- exposition --------------------------------------------------------------------

    def collect(self) -> Iterable[Metric]:
        """The domain's series as prometheus-client metric families."""
        yield from self._scheduling.collect()
        yield from self.results.collect()

    def render(self, openmetrics: bool) -> str:
        """The exposition text of every series (without OpenMetrics' ``# EOF``), the
        results on their fast path.

        Args:
            openmetrics: OpenMetrics 1.0 rather than the Prometheus text format 0.0.4.

        Returns:
            The text.
        """
        encode = openmetrics_latest if openmetrics else generate_latest
        scheduling = encode(self._scheduling).decode()
        return scheduling.removesuffix("# EOF\n") + self.results.render(openmetrics)
