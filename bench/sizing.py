"""Sizing: the series one exporter exposes for 1, 30 and 300 regions, and the samples per
second a Prometheus ingests from it at the default scrape interval.

One command::

    .venv/bin/python -m bench.sizing            # defaults: --regions 1,30,300

For each region count, a real ``registry-slo serve`` probes that many regions (each
region its own probe repository on one of two real ``docker-registry`` processes; push,
pull and auth at the default 30 s interval; 64 KiB blobs, which change no series) with
the four probe SLOs of the example applying to every region. Once ``/readyz`` says every
probe has run, ``/metrics`` is read as Prometheus reads it (text format) and its samples
are counted by family; a second read one interval later shows whether the count is
settled. Samples per second = samples / ``prometheus.scrape_interval`` (30 s).

Then a real Prometheus (Debian's) scrapes that exporter every 10 s for ``--watch``
seconds with the rules ``registry-slo generate`` writes for the same configuration,
evaluated every 30 s: its head series, resident memory, and the time one evaluation of
every rule group takes (``prometheus_rule_group_last_duration_seconds``, summed), from
its own metrics. That history is minutes long; ``python -m bench.rules_eval --regions N``
measures rule evaluation over hours of backfilled history (docs/scaling.md has both).
"""

from __future__ import annotations

import argparse
import contextlib
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import yaml

from bench import rules_eval
from bench._util import machine, parse_metrics, status_kib, total, write_result
from registry_slo.config import load_config
from registry_slo.devenv import LocalRegistry, free_port
from registry_slo.generate import generate
from tests.harness.prometheus import LocalPrometheus, scrape_job
from tests.harness.serve import ServeProcess

SCRAPE_INTERVAL = 30.0
"""The default ``prometheus.scrape_interval`` and probe interval."""
SLOS = [slo for slo in rules_eval.SLOS if slo["sli"]["kind"] != "replication_lag"]
"""The example's probe SLOs (these regions are no mirrors: no replication lag)."""


def _samples(text: str) -> Counter[str]:
    """Samples by metric family (the name up to ``{`` without the type suffixes)."""
    families: Counter[str] = Counter()
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        name = line.split("{", 1)[0].split(" ", 1)[0]
        for suffix in ("_bucket", "_count", "_sum", "_total", "_created"):
            if name.endswith(suffix):
                name = name.removesuffix(suffix)
                break
        families[name] += 1
    return families


def _prometheus(listen: str, config: Path, work: Path, watch: float) -> dict[str, Any]:
    """A real Prometheus scraping ``listen`` with the generated rules, for ``watch`` s."""
    rules = work / f"rules-{config.stem}"
    generate(load_config(config), rules)
    with LocalPrometheus(
        scrape_configs=[scrape_job("registry-slo", [listen])],
        rule_files=sorted((rules / "rules").glob("*.yml")),
        scrape_interval=10.0, evaluation_interval=30.0, start_timeout=120,
    ) as prom:
        time.sleep(watch)
        own = parse_metrics(prom.own_metrics())
    durations = [s.value for s in own
                 if s.name == "prometheus_rule_group_last_duration_seconds"]
    return {
        "head_series": total(own, "prometheus_tsdb_head_series"),
        "rss_mib": round(total(own, "process_resident_memory_bytes") / 2**20, 1),
        "rule_groups": len(durations),
        "all_groups_ms": round(sum(durations) * 1000, 1),
        "failed_evaluations": total(own, "prometheus_rule_evaluation_failures_total"),
        "missed_iterations": total(own, "prometheus_rule_group_iterations_missed_total"),
    }


def measure(regions: int, work: Path, ready_timeout: float, watch: float) -> dict[str, Any]:
    """Run one exporter over ``regions`` regions; count what ``/metrics`` exposes."""
    with contextlib.ExitStack() as stack:
        registries = [stack.enter_context(LocalRegistry(
            log_level="warn", extra_config={"log": {"accesslog": {"disabled": True}}}))
            for _ in range(2)]
        listen = f"127.0.0.1:{free_port()}"
        config = {
            "listen": listen,
            "log_format": "json",
            "log_level": "warning",
            "state_dir": str(work / f"state-{regions}"),
            "defaults": {"probe": {"blob_size": "64KiB"}},
            "regions": [
                {"name": f"r{i:03d}", "url": registries[i % 2].url,
                 "probe": {"repository": f"sizing/region-{i:03d}"}}
                for i in range(regions)
            ],
            "slos": SLOS,
        }
        path = work / f"regions-{regions}.yaml"
        path.write_text(yaml.safe_dump(config, sort_keys=False))
        started = time.monotonic()
        serve = ServeProcess(path, work / f"exporter-{regions}.log", timeout=60)
        stack.callback(serve.stop)
        base = serve.base
        while True:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{base}/readyz", timeout=5).status_code == 200:
                    break
            if serve.proc.poll() is not None or time.monotonic() - started > ready_timeout:
                raise RuntimeError(f"exporter not ready after {ready_timeout:g}s "
                                   f"(exit {serve.proc.poll()}); see {serve.log}")
            time.sleep(1.0)
        ready_s = time.monotonic() - started
        first = _samples(httpx.get(f"{base}/metrics", timeout=60).text)
        time.sleep(SCRAPE_INTERVAL)
        response = httpx.get(f"{base}/metrics", timeout=60)
        second = _samples(response.text)
        rss_kib = status_kib(serve.proc.pid, "VmRSS")
        prometheus = _prometheus(listen, path, work, watch)
    total = sum(second.values())
    ours = sum(n for name, n in second.items() if name.startswith("registry_slo_"))
    return {
        "regions": regions,
        "ready_seconds": round(ready_s, 1),
        "samples": total,
        "registry_slo_samples": ours,
        "samples_first_read": sum(first.values()),
        "payload_bytes": len(response.content),
        "samples_per_second": total / SCRAPE_INTERVAL,
        "exporter_rss_mib": round(rss_kib / 1024, 1),
        "top_families": dict(second.most_common(8)),
        "prometheus": prometheus,
    }


def table(results: list[dict[str, Any]]) -> str:
    """Markdown: one row per region count, then the largest families of the last."""
    lines = [
        "| regions | samples on /metrics (registry_slo_*) | per region | samples/s at 30 s "
        "| text payload | exporter RSS | settled (2nd read = 1st) |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    base = results[0]
    for r in results:
        per_region = ((r["registry_slo_samples"] - base["registry_slo_samples"])
                      / (r["regions"] - base["regions"]) if r is not base else None)
        lines.append(
            f"| {r['regions']} | {r['samples']:,} ({r['registry_slo_samples']:,}) | "
            f"{'' if per_region is None else f'{per_region:.0f}'} | "
            f"{r['samples_per_second']:.1f} | {r['payload_bytes'] / 1024:.0f} KiB | "
            f"{r['exporter_rss_mib']:.0f} MiB | "
            f"{'yes' if r['samples'] == r['samples_first_read'] else 'no'} |")
    lines += [
        "", "| regions | Prometheus head series | Prometheus RSS | rule groups | one evaluation "
        "of all groups | failed / missed |",
        "| ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in results:
        p = r["prometheus"]
        lines.append(
            f"| {r['regions']} | {p['head_series']:,.0f} | {p['rss_mib']:.0f} MiB | "
            f"{p['rule_groups']} | {p['all_groups_ms']:,.0f} ms | "
            f"{p['failed_evaluations']:.0f} / {p['missed_iterations']:.0f} |")
    last = results[-1]
    lines += ["", f"Largest families at {last['regions']} regions:", ""]
    lines += [f"- `{name}`: {count:,}" for name, count in last["top_families"].items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run the sizing benchmark; print the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--regions", default="1,30,300")
    parser.add_argument("--ready-timeout", type=float, default=300.0)
    parser.add_argument("--watch", type=float, default=120.0,
                        help="seconds the Prometheus scrapes and evaluates")
    args = parser.parse_args(argv)
    counts = [int(n) for n in args.regions.split(",")]
    results = []
    with tempfile.TemporaryDirectory(prefix="sizing-") as tmp:
        for regions in counts:
            print(f"{regions} region(s) ...", flush=True)
            results.append(measure(regions, Path(tmp), args.ready_timeout, args.watch))
    path = write_result("sizing", {"machine": machine(), "results": results})
    print(table(results))
    print(f"\n(raw results: {path})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
