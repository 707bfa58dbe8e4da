"""Rule evaluation cost in a real Prometheus: 50 regions x 5 SLOs, full vs performance mode.

One command::

    .venv/bin/python -m bench.rules_eval    # defaults: --regions 50 --history 1d --step 60
                                            #   --interval 60 --cycles 4 --settle 30

What it does:

1. generates the rules (``registry-slo generate``) for 50 regions, each running the
   example's five SLOs (pull and push availability, pull latency, auth success,
   replication freshness: 250 SLO rule groups, plus 51 registry alert groups), once
   with ``alerting.rule_mode: full`` and once with ``performance``;
2. writes ``--history`` of the series those rules read, as the exporter names and labels
   them (every probe's requests and its ten per-reason failure counters, the latency
   bucket and count, replication lag; and the 5m SLI recordings that performance mode
   averages), one sample per ``--step`` seconds ending now, and turns it into TSDB blocks
   with ``promtool tsdb create-blocks-from openmetrics``;
3. for each mode, starts a real Prometheus (Debian's) on a copy of those blocks with the
   mode's rule files, evaluation every ``--interval`` seconds, waits for the first
   evaluations and until the start-up compaction of the backfilled blocks is over (no
   compaction for 30 s), then reads Prometheus' own metrics
   after each of ``--cycles`` evaluation cycles: ``prometheus_rule_group_last_duration_
   seconds`` of every group (summed: the time one evaluation of all groups takes),
   by SLO, plus missed iterations, failed evaluations and the process' CPU seconds.

Results go to ``bench/results/rules-eval-*.json`` and a Markdown table is printed.
Full mode's long windows read every raw sample of the window, so its cost grows with the
history kept; performance mode reads one 5m recording per evaluation instead. The
history here (default one day) is shorter than a 30-day period: the windows of 1d and
longer see only that day, so full mode's figures are a lower bound for a Prometheus
that keeps 30 days.
"""

from __future__ import annotations

import argparse
import random
import shutil
import subprocess
import tempfile
import time
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TextIO

from bench._util import machine, parse_metrics, summary, total, write_result
from registry_slo._units import parse_duration
from registry_slo.config import Settings
from registry_slo.generate import generate
from registry_slo.generate._model import identity
from registry_slo.oci import Reason
from tests.harness.prometheus import LocalPrometheus

SLOS: list[dict[str, Any]] = [
    {"name": "pull-availability", "sli": {"kind": "probe_success", "probe": "pull"},
     "objective": 99.9},
    {"name": "push-availability", "sli": {"kind": "probe_success", "probe": "push"},
     "objective": 99.5},
    {"name": "pull-latency", "sli": {"kind": "probe_latency", "probe": "pull",
                                     "threshold": "2s"}, "objective": 99, "period": "28d"},
    {"name": "auth-success", "sli": {"kind": "auth_success"}, "objective": 99.9},
    {"name": "replication-freshness", "sli": {"kind": "replication_lag", "threshold": "30s"},
     "objective": 99.5},
]
_JOB = 'job="registry-slo",instance="synthetic:9731"'


def bench_settings(regions: int, mode: str) -> Settings:
    """``regions`` mirror regions of one primary, every SLO applying to each mirror."""
    names = [f"r{i:03d}" for i in range(1, regions + 1)]
    return Settings.model_validate({
        "regions": [{"name": "primary", "url": "http://127.0.0.1:5000"}] + [
            {"name": name, "url": f"http://127.0.0.1:{5001 + i}", "replicates_from": "primary",
             "probe": {"enabled": ["push", "pull", "auth"]}}
            for i, name in enumerate(names)
        ],
        "slos": [{**slo, "regions": names} for slo in SLOS],
        "alerting": {"rule_mode": mode},
    })


def _family(out: TextIO, name: str, series: list[tuple[str, Iterator[float]]],
            stamps: list[float]) -> int:
    out.write(f"# TYPE {name} unknown\n")
    for labels, values in series:
        for stamp, value in zip(stamps, values, strict=False):
            out.write(f"{name}{{{labels}}} {value:g} {stamp:.3f}\n")
    return len(series) * len(stamps)


def _counter(step_rate: float) -> Iterator[float]:
    value = 0.0
    while True:
        yield value
        value += step_rate


def _rare_failures(rng: random.Random, chance: float) -> Iterator[float]:
    value = 0.0
    while True:
        yield value
        if rng.random() < chance:
            value += 1


def write_history(path: Path, settings: Settings, history: float, step: float,
                  end: float) -> int:
    """The OpenMetrics input for promtool: the series the rules read, ending at ``end``.

    Returns:
        The number of samples written.
    """
    rng = random.Random(7)
    stamps = [end - history + i * step for i in range(int(history // step) + 1)]
    runs = step / 30  # a probe every 30 s
    targets = settings.slo_targets()
    regions = sorted({t.region for t in targets})
    samples = 0
    with path.open("w") as out:
        for probe in ("pull", "push", "auth"):
            samples += _family(out, "registry_slo_probe_requests_total", [
                (f'{_JOB},region="{r}",probe="{probe}"', _counter(runs)) for r in regions
            ], stamps)
            samples += _family(out, "registry_slo_probe_failures_total", [
                (f'{_JOB},region="{r}",probe="{probe}",reason="{reason}"',
                 _rare_failures(rng, 0.001 if reason == "timeout" else 0.0))
                for r in regions for reason in map(str, Reason)
            ], stamps)
        samples += _family(out, "registry_slo_probe_duration_seconds_bucket", [
            (f'{_JOB},region="{r}",probe="pull",le="2.0"', _counter(runs * 0.995))
            for r in regions
        ], stamps)
        samples += _family(out, "registry_slo_probe_duration_seconds_count", [
            (f'{_JOB},region="{r}",probe="pull"', _counter(runs)) for r in regions
        ], stamps)
        samples += _family(out, "registry_slo_replication_lag_seconds", [
            (f'{_JOB},region="{r}",source_region="primary"',
             iter(lambda: rng.uniform(1, 12), None)) for r in regions
        ], stamps)
        # What performance mode averages: the 5m recordings, one per minute.
        minutes = [s for s in stamps if int(s) % 60 < step]
        samples += _family(out, "slo:sli_error:ratio_rate5m", [
            (",".join(f'{k}="{v}"' for k, v in
                      {**identity(t), "sloth_window": "5m"}.items()),
             iter(lambda: rng.uniform(0, 0.002), None))
            for t in targets
        ], minutes)
        out.write("# EOF\n")
    return samples


def _group_slo(group: str) -> str:
    # rule_group="<file>;registry-slo/slo/<slo>/<region>" or ".../registry/<region>"
    name = group.split(";", 1)[1]
    parts = name.split("/")
    return parts[2] if parts[1] == "slo" else "registry alerts"


def _wait_compactions_done(prom: LocalPrometheus, quiet: float = 30.0,
                           timeout: float = 900.0) -> None:
    """Wait until Prometheus has compacted the backfilled blocks (no compaction for
    ``quiet`` seconds), so compaction CPU does not count as rule evaluation."""
    deadline = time.monotonic() + timeout
    last = -1.0
    while time.monotonic() < deadline:
        done = total(parse_metrics(prom.own_metrics()), "prometheus_tsdb_compactions_total")
        if done == last:
            return
        last = done
        time.sleep(quiet)


def measure(mode: str, rules: Path, blocks: Path, interval: float, cycles: int,
            settle: float) -> dict[str, Any]:
    """Run Prometheus on a copy of ``blocks`` with the rules of ``rules``; read its own
    metrics once per evaluation cycle."""
    with tempfile.TemporaryDirectory(prefix=f"rules-eval-{mode}-") as tmp:
        data = Path(tmp) / "data"
        shutil.copytree(blocks, data)
        prom = LocalPrometheus(
            rule_files=sorted((rules / "rules").glob("*.yml")),
            evaluation_interval=interval, storage_dir=data, start_timeout=120,
        )
        with prom:
            time.sleep(settle)
            _wait_compactions_done(prom)
            totals: list[float] = []
            by_slo: dict[str, list[float]] = defaultdict(list)
            start = parse_metrics(prom.own_metrics())
            for _ in range(cycles):
                time.sleep(interval)
                samples = parse_metrics(prom.own_metrics())
                per_group = {s.labels["rule_group"]: s.value for s in samples
                             if s.name == "prometheus_rule_group_last_duration_seconds"}
                totals.append(sum(per_group.values()))
                grouped: dict[str, float] = defaultdict(float)
                for group, seconds in per_group.items():
                    grouped[_group_slo(group)] += seconds
                for slo, seconds in grouped.items():
                    by_slo[slo].append(seconds)
            end = parse_metrics(prom.own_metrics())
            groups = len(per_group)
            rules_loaded = total(end, "prometheus_rule_group_rules")
            missed = total(end, "prometheus_rule_group_iterations_missed_total") - total(
                start, "prometheus_rule_group_iterations_missed_total")
            failures = total(end, "prometheus_rule_evaluation_failures_total") - total(
                start, "prometheus_rule_evaluation_failures_total")
            cpu = total(end, "process_cpu_seconds_total") - total(
                start, "process_cpu_seconds_total")
            series = total(end, "prometheus_tsdb_head_series")
            rss = total(end, "process_resident_memory_bytes")
            compactions = total(end, "prometheus_tsdb_compactions_total") - total(
                start, "prometheus_tsdb_compactions_total")
    return {
        "mode": mode,
        "groups": groups,
        "rules": rules_loaded,
        "all_groups_seconds": summary(totals),
        "by_slo_seconds": {slo: summary(values) for slo, values in sorted(by_slo.items())},
        "iterations_missed": missed,
        "evaluation_failures": failures,
        "cpu_seconds_per_minute": cpu / (cycles * interval) * 60,
        "head_series": series,
        "rss_bytes": rss,
        "compactions_while_measuring": compactions,
    }


def table(results: list[dict[str, Any]], params: dict[str, Any]) -> str:
    """The Markdown table of both modes."""
    lines = [
        f"{params['regions']} regions x {len(SLOS)} SLOs ({params['slo_groups']} SLO rule "
        f"groups + {params['regions'] + 1} registry groups), {params['history']} of history "
        f"at {params['step']:g}s steps ({params['samples']:,} samples backfilled), "
        f"evaluation every {params['interval']:g}s, {params['cycles']} cycles",
        "",
        "| mode | rules | all groups, median ms | p90 ms | max ms | CPU s per minute | "
        "missed iterations | failed evaluations | Prometheus RSS |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in results:
        s = r["all_groups_seconds"]
        lines.append(
            f"| {r['mode']} | {r['rules']:.0f} | {s['median'] * 1000:.1f} | "
            f"{s['p90'] * 1000:.1f} | {s['max'] * 1000:.1f} | "
            f"{r['cpu_seconds_per_minute']:.2f} | {r['iterations_missed']:.0f} | "
            f"{r['evaluation_failures']:.0f} | {r['rss_bytes'] / 2**20:.0f} MiB |"
        )
    lines += ["", "| SLO (all regions) | " + " | ".join(
        f"{r['mode']} median ms" for r in results) + " |",
        "| --- |" + " ---: |" * len(results)]
    for slo in results[0]["by_slo_seconds"]:
        lines.append(f"| {slo} | " + " | ".join(
            f"{r['by_slo_seconds'][slo]['median'] * 1000:.1f}" for r in results) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; print the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--regions", type=int, default=50)
    parser.add_argument("--history", default="1d", help="history backfilled (default 1d)")
    parser.add_argument("--step", type=float, default=60.0, help="seconds between samples")
    parser.add_argument("--interval", type=float, default=60.0,
                        help="rule evaluation interval, seconds")
    parser.add_argument("--cycles", type=int, default=4)
    parser.add_argument("--settle", type=float, default=30.0,
                        help="seconds to wait after start before measuring")
    args = parser.parse_args(argv)
    history = parse_duration(args.history)
    promtool = shutil.which("promtool")
    if promtool is None:
        raise SystemExit("promtool not found: apt-get install prometheus")
    results = []
    with tempfile.TemporaryDirectory(prefix="rules-eval-") as tmp:
        work = Path(tmp)
        full = bench_settings(args.regions, "full")
        started = time.monotonic()
        samples = write_history(work / "history.om", full, history, args.step,
                                time.time() - 60)
        blocks = work / "blocks"
        subprocess.run([promtool, "tsdb", "create-blocks-from", "openmetrics", "--quiet",
                        str(work / "history.om"), str(blocks)], check=True)
        (work / "history.om").unlink()
        backfill_s = time.monotonic() - started
        for mode in ("full", "performance"):
            rules = work / f"rules-{mode}"
            generate(bench_settings(args.regions, mode), rules)
            results.append(measure(mode, rules, blocks, args.interval, args.cycles,
                                   args.settle))
    params = {"regions": args.regions, "history": args.history, "step": args.step,
              "interval": args.interval, "cycles": args.cycles, "samples": samples,
              "slo_groups": len(full.slo_targets()), "backfill_seconds": round(backfill_s, 1)}
    path = write_result("rules-eval", {"params": params, "machine": machine(),
                                       "results": results})
    print(table(results, params))
    print(f"\n(raw results: {path})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
