"""``python -m bench``: run the benchmarks, write JSON and a Markdown summary.

Everything is started and stopped here (real ``docker-registry`` processes, the exporter,
blackbox_exporter) on 127.0.0.1 with free ports and temporary directories. Raw results
go to ``bench/results/*.json``, the tables to ``bench/results/summary-latest.md``.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from bench import lag, overhead, scale
from bench._util import RESULTS, py_spy


def _fmt(value: float, digits: int = 1) -> str:
    return f"{value:.{digits}f}"


def overhead_table(r: dict[str, Any]) -> str:
    """Markdown for the probe-overhead result."""
    rows = [
        ("exporter pull probe (`duration_seconds`)", r["exporter_ms"]),
        ("curl, sum of `time_total` (4 transfers)", r["curl_ms"]),
        ("curl, wall time of the process", r["curl_process_wall_ms"]),
    ]
    phases = ", ".join(f"{k} {_fmt(v['median'])}" for k, v in r["exporter_phases_ms"].items())
    per_request = ", ".join(_fmt(v, 2) for v in r["curl_per_request_median_ms"])
    lines = [
        f"Probe overhead: {r['params']['runs']} interleaved runs, 1 registry, "
        f"{r['params']['bytes_per_run']} bytes per run ({r['machine']['date']})",
        "",
        "| measured | median ms | p90 ms | min ms | max ms |",
        "| --- | ---: | ---: | ---: | ---: |",
        *(f"| {name} | {_fmt(s['median'], 2)} | {_fmt(s['p90'], 2)} | {_fmt(s['min'], 2)} "
          f"| {_fmt(s['max'], 2)} |" for name, s in rows),
        "",
        f"- ratio of medians exporter / curl: **{r['ratio_of_medians']:.2f}x** "
        f"(goal <= {r['goal_ratio']}x: {'met' if r['goal_met'] else 'MISSED'}); "
        f"ratio of p90: {r['ratio_of_p90']:.2f}x; vs curl's process wall time: "
        f"{r['ratio_vs_curl_wall']:.2f}x",
        f"- difference of medians: **{r['difference_of_medians_ms']:+.2f} ms**",
        f"- exporter phase medians (ms): {phases}; curl per-request medians (ms, "
        f"manifest by tag, by digest, config, layer): {per_request}",
    ]
    return "\n".join(lines)


def scale_table(r: dict[str, Any]) -> str:
    """Markdown for one scale result."""
    p, met = r["params"], r["goals_met"]

    def goal(key: str, text: str) -> str:
        return f"{text} ({'met' if met[key] else 'MISSED'})"

    render = r["metrics_render"]
    dur = r["probe_duration"]
    rows = [
        ("exporter CPU, share of one core", _fmt(100 * r["cpu_share"]["exporter"]) + " %",
         goal("cpu_share", "< 25 %")),
        ("exporter CPU per probe run", _fmt(r["exporter_cpu_ms_per_probe"], 2) + " ms", ""),
    ]
    if "blackbox" in r:
        bb = r["blackbox"]
        rows += [
            ("peer: blackbox_exporter CPU, share of one core",
             _fmt(100 * r["cpu_share"]["blackbox"]) + " %", ""),
            ("peer: blackbox CPU per probe (GET /v2/)", _fmt(bb["cpu_ms_per_probe"], 2) + " ms",
             ""),
            ("ratio CPU per probe, exporter / blackbox",
             _fmt(r["cpu_per_probe_ratio_vs_blackbox"]) + "x", ""),
            ("peer latency: blackbox GET /v2/ p50 / p99 vs exporter auth probe (same "
             "request) p50 / p99",
             f"{1000 * bb['probe_duration_p50_s']:.0f} / {1000 * bb['probe_duration_p99_s']:.0f}"
             f" ms vs {1000 * r['probe_duration']['auth']['p50_s']:.0f} / "
             f"{1000 * r['probe_duration']['auth']['p99_s']:.0f} ms", ""),
        ]
    rows += [
        (f"registries' CPU ({p['registries']} processes), share of one core",
         _fmt(100 * r["cpu_share"]["registries"]) + " %", ""),
        ("machine busy / steal (both cores)",
         f"{100 * r['system']['busy']:.0f} % / {100 * r['system']['steal']:.1f} %", ""),
        ("other sessions' processes (not this bench), share of one core",
         _fmt(100 * r["cpu_share_other_processes"]) + " %", "noise"),
        ("exporter system (kernel) CPU, share of one core",
         _fmt(100 * r["exporter_system_cpu_share"]) + " %", ""),
        ("probe starts in the busiest third of the interval",
         _fmt(100 * r["probe_starts_in_busiest_third_of_interval"]) + " %", "33 % = even"),
        ("exporter RSS: peak (VmHWM) / window max / end",
         f"{r['exporter_rss_mib']['peak_vmhwm']:.0f} / {r['exporter_rss_mib']['window_max']:.0f}"
         f" / {r['exporter_rss_mib']['end']:.0f} MiB", goal("rss_mib", "< 150 MiB")),
        ("schedule drift p50 / p99", f"{1000 * r['drift_p50_s']:.1f} / "
         f"{1000 * r['drift_p99_s']:.0f} ms", goal("drift_p99_s", "p99 < 1 s")),
        ("/metrics time to first byte, median / p99 (Prometheus headers, gzip)",
         f"{render['ttfb_ms']['median']:.0f} / {render['ttfb_ms']['p99']:.0f} ms",
         goal("render_ms", "< 50 ms") + "; p99 " + ("met" if met["render_p99_ms"] else "MISSED")),
        ("/metrics plain text, median TTFB", f"{render['plain_text_ttfb_ms']['median']:.0f} ms",
         ""),
        ("/metrics payload: series / plain text / gzip OpenMetrics",
         f"{render['series']} / {render['payload_bytes_plain_text'] / 2**20:.1f} MiB / "
         f"{render['payload_bytes_gzip_openmetrics'] / 2**10:.0f} KiB", ""),
        ("probe runs in window / expected",
         f"{r['probe_runs']:.0f} / {r['probe_runs_expected']:.0f}", ""),
        ("probe failures / skipped runs in window",
         f"{r['probe_failures']:.0f} / {r['probe_skipped']:.0f}", "should be 0"),
        ("probe duration p50 / p99: push, pull, auth",
         ", ".join(f"{1000 * dur[k]['p50_s']:.0f} / {1000 * dur[k]['p99_s']:.0f} ms"
                   for k in ("push", "pull", "auth")), ""),
    ]
    head = (f"Scale: {p['regions']} regions on {p['registries']} registries, all three probes "
            f"every {p['interval']:g} s, blob {p['blob_size']}, window {r['window_s']:.0f} s "
            f"after ready + {p['warmup']:g} s warm-up ({r['machine']['date']})")
    body = [f"| {a} | {b} | {c} |" for a, b, c in rows]
    return "\n".join([head, "", "| figure | value | goal |", "| --- | ---: | --- |", *body])


def history() -> str:
    """One line per stored result of ours in ``bench/results/``: how much runs vary."""
    lines = [
        "| run (UTC) | benchmark | others' CPU | exporter CPU | RSS peak | drift p99 "
        "| /metrics median | failures in window | exporter/curl |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    paths = [*RESULTS.glob("overhead-2*.json"), *RESULTS.glob("scale-*-2*.json")]
    for path in sorted(paths, key=lambda p: p.stem.rsplit("-", 1)[1]):
        r = json.loads(path.read_text())
        when = r["machine"]["date"][11:16]
        if r["benchmark"] == "probe-overhead":
            lines.append(f"| {when} | overhead, {r['params']['runs']} runs | | | | | | "
                         f"| {r['ratio_of_medians']:.2f}x |")
            continue
        cores = r["machine"]["cores"]
        others = r.get("cpu_share_other_processes",
                       r["system"]["busy"] * cores - sum(r["cpu_share"].values()))
        lines.append(
            f"| {when} | scale {r['params']['regions']} x {r['params']['blob_size']} "
            f"| {100 * others:.0f} % "
            f"| {100 * r['cpu_share']['exporter']:.0f} % "
            f"| {r['exporter_rss_mib']['peak_vmhwm']:.0f} MiB | {1000 * r['drift_p99_s']:.0f} ms "
            f"| {r['metrics_render']['ttfb_ms']['median']:.0f} ms | {r['probe_failures']:.0f} | |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Entry point."""
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("which", nargs="?", default="all",
                        choices=("all", "overhead", "scale", "lag", "history"),
                        help="history: tabulate every stored result instead of running")
    parser.add_argument("--runs", type=int, default=200, help="overhead: measured runs per side")
    parser.add_argument("--regions", type=int, default=200)
    parser.add_argument("--registries", type=int, default=4)
    parser.add_argument("--interval", type=float, default=15.0)
    parser.add_argument("--blob-sizes", default="1MiB,64KiB",
                        help="scale: comma-separated probe blob sizes, one run each")
    parser.add_argument("--warmup", type=float, default=30.0)
    parser.add_argument("--window", type=float, default=180.0)
    parser.add_argument("--render-gets", type=int, default=100)
    parser.add_argument("--no-blackbox", action="store_true")
    parser.add_argument("--no-profile", action="store_true", help="skip py-spy profiles")
    parser.add_argument("--quick", action="store_true", help="tiny smoke run of everything")
    args = parser.parse_args(argv)
    if args.quick:
        args.runs, args.regions, args.warmup, args.window = 10, 20, 5.0, 30.0
        args.render_gets, args.blob_sizes = 20, "1MiB"
    if args.which == "history":
        print(history())
        return 0
    profiling = not args.no_profile and py_spy() is not None
    sections: list[str] = []
    if args.which in ("all", "overhead"):
        print("probe overhead ...", flush=True)
        result = overhead.run(runs=args.runs, profile_seconds=15.0 if profiling else 0.0)
        sections.append(overhead_table(result))
        print(sections[-1] + f"\n-> {result['results_file']}\n", flush=True)
    if args.which in ("all", "scale"):
        for size in args.blob_sizes.split(","):
            print(f"scale, blob size {size} ...", flush=True)
            result = scale.run(
                regions=args.regions, registries=args.registries, interval=args.interval,
                blob_size=size.strip(), warmup=args.warmup, window=args.window,
                render_gets=args.render_gets, profile_seconds=20.0 if profiling else 0.0,
                blackbox=not args.no_blackbox,
            )
            sections.append(scale_table(result))
            print(sections[-1] + f"\n-> {result['results_file']}\n", flush=True)
    if args.which in ("all", "lag"):
        print("replication lag resolution ...", flush=True)
        lag_result = lag.run(duration=20.0 if args.quick else 60.0)
        sections.append(lag.table(lag_result))
        print(sections[-1] + "\n", flush=True)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "summary-latest.md").write_text("\n\n".join(sections) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
