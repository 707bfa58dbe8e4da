"""The monthly review at scale: 30 regions x 8 SLOs from a real Prometheus.

One command::

    .venv/bin/python -m bench.report_bench     # defaults: --regions 30 --interval 300

What it does:

1. writes, for every region, a pull, a push and an auth probe running every
   ``--interval`` seconds from 29 October to 1 December 2026 (rare failures, a one-hour
   outage in one region in four, latencies around 0.3 s with a slow tail), as the
   exporter's series (``tests/harness/backfill.py``), and turns them into TSDB blocks
   with ``promtool tsdb create-blocks-from openmetrics``;
2. starts a real Prometheus (Debian's) on them with the generated rules of the same
   configuration (8 SLOs in every region);
3. runs the November report in this process (``build_report``, then ``write_report``)
   three times: once to warm the server up, then with the SLO targets queried one at a
   time and four at a time (as ``registry-slo report`` does), the peers of the same run;
   it measures the wall time of each part and the queries sent.

Results go to ``bench/results/report-*.json`` and a Markdown table is printed.
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench._util import machine, write_result
from registry_slo.config import Settings
from registry_slo.generate import generate
from registry_slo.report import PrometheusSource, build_report, month, write_report
from tests.harness import binary_path
from tests.harness.backfill import ProbeRun, create_blocks, write_probe_series
from tests.harness.prometheus import LocalPrometheus

START = datetime(2026, 10, 29, tzinfo=UTC).timestamp()
END = datetime(2026, 12, 1, tzinfo=UTC).timestamp()
PROBES = ("pull", "push", "auth")
SLOS: list[dict[str, Any]] = [
    {"name": "pull-availability", "sli": {"kind": "probe_success", "probe": "pull"},
     "objective": 99.9},
    {"name": "push-availability", "sli": {"kind": "probe_success", "probe": "push"},
     "objective": 99.5},
    {"name": "auth-success", "sli": {"kind": "auth_success"}, "objective": 99.9},
    {"name": "pull-latency", "sli": {"kind": "probe_latency", "probe": "pull",
                                     "threshold": "2s"}, "objective": 99},
    {"name": "pull-latency-fast", "sli": {"kind": "probe_latency", "probe": "pull",
                                          "threshold": "1s"}, "objective": 95},
    {"name": "push-latency", "sli": {"kind": "probe_latency", "probe": "push",
                                     "threshold": "5s"}, "objective": 99},
    {"name": "auth-latency", "sli": {"kind": "probe_latency", "probe": "auth",
                                     "threshold": "1s"}, "objective": 99},
    {"name": "pull-availability-28d", "sli": {"kind": "probe_success", "probe": "pull"},
     "objective": 99.5, "period": "28d"},
]


def bench_settings(regions: int) -> Settings:
    """``regions`` regions, every SLO in each."""
    return Settings.model_validate({
        "regions": [{"name": f"r{i:02d}", "url": f"http://127.0.0.1:{5000 + i}",
                     "probe": {"enabled": list(PROBES), "interval": "5m"}}
                    for i in range(1, regions + 1)],
        "slos": SLOS,
    })


def _runs(rng: random.Random, interval: float, outage: bool) -> list[ProbeRun]:
    runs = []
    at = START + interval
    down = (datetime(2026, 11, 12, 9, tzinfo=UTC).timestamp(),
            datetime(2026, 11, 12, 10, tzinfo=UTC).timestamp())
    while at <= END:
        failed = None
        if outage and down[0] < at <= down[1]:
            failed = "timeout"
        elif rng.random() < 0.0005:
            failed = "server_error"
        seconds = 10.0 if failed else rng.lognormvariate(-1.2, 0.5)
        runs.append(ProbeRun(at, failed, seconds))
        at += interval
    return runs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--regions", type=int, default=30)
    parser.add_argument("--interval", type=float, default=300.0,
                        help="seconds between probe runs (and samples) in the history")
    args = parser.parse_args(argv)
    promtool = binary_path("promtool")
    assert promtool is not None, "promtool is needed (apt-get install prometheus)"
    settings = bench_settings(args.regions)
    rng = random.Random(11)
    with tempfile.TemporaryDirectory(prefix="report-bench-") as tmp:
        work = Path(tmp)
        started = time.perf_counter()
        runs = {(region.name, probe): _runs(rng, args.interval, i % 4 == 0)
                for i, region in enumerate(settings.regions) for probe in PROBES}
        create_blocks(promtool, write_probe_series(work, runs, START, END), work / "tsdb")
        backfill = time.perf_counter() - started
        print(f"backfilled {len(runs)} probes in {backfill:.0f} s", flush=True)
        generate(settings, work / "alerts")
        with LocalPrometheus(rule_files=sorted((work / "alerts" / "rules").glob("*.yml")),
                             storage_dir=work / "tsdb", retention="3650d",
                             log_path=work / "prometheus.log", start_timeout=120) as prom:
            span = month("2026-11")
            runs_by_threads = {}
            # The first pass warms Prometheus (its blocks' pages, its caches) and is not
            # reported; then one at a time and four at once, each on a warm server.
            for threads in (4, 1, 4):
                source = PrometheusSource(prom.url)
                started = time.perf_counter()
                report = build_report(settings, source, span, span.previous(), threads=threads)
                computed = time.perf_counter() - started
                started = time.perf_counter()
                written = write_report(report, work / f"review-{threads}")
                rendered = time.perf_counter() - started
                source.close()
                runs_by_threads[threads] = {
                    "compute_seconds": computed, "render_seconds": rendered,
                    "report_seconds": computed + rendered, "queries": source.queries,
                    "output_bytes": sum(p.stat().st_size for p in written)}
    result = {
        "machine": machine(),
        "params": {"regions": args.regions, "slos": len(SLOS), "interval": args.interval,
                   "targets": len(report.results)},
        "backfill_seconds": backfill,
        "runs": runs_by_threads,
    }
    path = write_result("report", result)
    print("| regions x SLOs | targets at once | queries | wall time | querying and "
          f"computing | rendering (HTML, Markdown, JSON, {len(report.results)} charts) |")
    print("|---|---:|---:|---:|---:|---:|")
    for threads, run in runs_by_threads.items():
        print(f"| {args.regions} x {len(SLOS)} | {threads} | {run['queries']} | "
              f"{run['report_seconds']:.1f} s | {run['compute_seconds']:.1f} s | "
              f"{run['render_seconds']:.1f} s |")
    ratio = runs_by_threads[4]["compute_seconds"] / runs_by_threads[1]["compute_seconds"]
    print(f"querying and computing, 4 at once / 1 at a time: {ratio:.2f}x")
    print(f"results: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
