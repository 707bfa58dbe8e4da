"""Benchmark: ``registry-slo replay`` against Debian's ``mtail`` on one distribution log.

    .venv/bin/python -m bench.ingest_bench            # 1,000,000 lines (about 600 MB)
    .venv/bin/python -m bench.ingest_bench --lines 200000 --keep /tmp/ingest-bench

Both read the same generated distribution 2.8 JSON log (:mod:`bench.ingest_gen`, shapes
copied from the real registry) once, from start to end, and derive the same counters:
requests by method and status, and the sum of their durations
(``bench/ingest_distribution.mtail`` is mtail's program; the benchmark checks that both
agree before it reports a figure). One run each, one after the other, each a separate
process timed from start to exit (start-up included): wall time, CPU time (user + system,
from ``wait4``) and peak RSS. ``replay`` is also run on the first 10% of the file, to
show that its memory does not grow with the file's length.

Results go to ``bench/results/ingest-*.json``; the Markdown summary is printed.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench._util import machine, write_result
from bench.ingest_gen import generate

HERE = Path(__file__).resolve().parent
PROGRAM = HERE / "ingest_distribution.mtail"
GOAL_RATIO = 4.0


@dataclass
class Run:
    """One process, timed from start to exit."""

    wall: float
    cpu: float
    max_rss_mib: float
    stdout: str


def run(argv: list[str]) -> Run:
    """Run ``argv`` to completion; wall time, CPU time and peak RSS from ``wait4``."""
    started = time.perf_counter()
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(argv, stdout=out, stderr=err, stdin=subprocess.DEVNULL)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        if proc.returncode != 0:
            raise RuntimeError(f"{argv[0]} exited {proc.returncode}: {err.read()[-2000:]!r}")
        return Run(wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024,
                   out.read().decode())


def write_log(path: Path, lines: int, seed: int) -> None:
    """Write the generated log (deterministic for ``seed``)."""
    with path.open("w", encoding="utf-8") as fh:
        for line in generate(lines, seed):
            fh.write(line + "\n")


def mtail_counts(text: str) -> tuple[Counter[str], float]:
    """Requests by ``METHOD STATUS`` and the duration sum from ``mtail --one_shot`` JSON."""
    data = json.loads(text)
    counts: Counter[str] = Counter()
    for metric in data.get("registry_requests_total", []):
        for value in metric["LabelValues"]:
            method, status = value["Labels"]
            counts[f"{method} {status}"] += int(value["Value"]["Value"])
    sums = data.get("registry_request_duration_seconds_sum", [])
    duration = sum(v["Value"]["Value"] for m in sums for v in m["LabelValues"])
    return counts, float(duration)


def replay_counts(text: str) -> tuple[Counter[str], float, dict[str, Any]]:
    """The same counters from ``registry-slo replay --json``."""
    data = json.loads(text)
    return Counter(data["requests_by_method_status"]), float(data["duration_seconds_sum"]), data


def bench(lines: int, workdir: Path, seed: int) -> dict[str, Any]:
    """Generate the logs, run both tools, check they agree, return the figures."""
    mtail = shutil.which("mtail")
    if mtail is None:
        raise SystemExit("mtail not found: apt-get install mtail")
    log = workdir / "registry.log"
    small = workdir / "registry-10pct.log"
    if not log.exists() or sum(1 for _ in log.open("rb")) != lines:
        write_log(log, lines, seed)
    write_log(small, lines // 10, seed)  # the same first lines
    progs = workdir / "progs"
    progs.mkdir(exist_ok=True)
    shutil.copy(PROGRAM, progs / PROGRAM.name)
    size = log.stat().st_size

    load_before = os.getloadavg()
    m = run([mtail, "--one_shot", "--one_shot_format", "json", "--progs", str(progs),
             "--logs", str(log), "--address", "127.0.0.1", "--port", "0", "--logtostderr"])
    replay_argv = [sys.executable, "-m", "registry_slo", "replay", "--format", "distribution",
                   "--json"]
    r = run([*replay_argv, str(log)])
    r_small = run([*replay_argv, str(small)])
    load_after = os.getloadavg()

    m_counts, m_duration = mtail_counts(m.stdout)
    r_counts, r_duration, data = replay_counts(r.stdout)
    agree = m_counts == r_counts and math.isclose(m_duration, r_duration, rel_tol=1e-9)
    if not agree:
        raise SystemExit(f"the counters differ:\n mtail  {dict(m_counts)} {m_duration}\n"
                         f" replay {dict(r_counts)} {r_duration}")
    result: dict[str, Any] = {
        "machine": machine(),
        "params": {"lines": lines, "bytes": size, "seed": seed,
                   "program": PROGRAM.name, "loadavg_before": load_before,
                   "loadavg_after": load_after},
        "counters_agree": agree,
        "requests": sum(r_counts.values()),
        "requests_by_method_status": dict(sorted(r_counts.items())),
        "duration_seconds_sum": r_duration,
        "mtail": {"wall_s": m.wall, "cpu_s": m.cpu, "max_rss_mib": m.max_rss_mib,
                  "lines_per_s": lines / m.wall, "lines_per_cpu_s": lines / m.cpu},
        "replay": {"wall_s": r.wall, "cpu_s": r.cpu, "max_rss_mib": r.max_rss_mib,
                   "lines_per_s": lines / r.wall, "lines_per_cpu_s": lines / r.cpu,
                   "internal_seconds": data["seconds"]},
        "replay_10pct": {"lines": lines // 10, "max_rss_mib": r_small.max_rss_mib,
                         "wall_s": r_small.wall},
    }
    result["ratio_lines_per_s"] = result["replay"]["lines_per_s"] / result["mtail"]["lines_per_s"]
    result["ratio_lines_per_cpu_s"] = (result["replay"]["lines_per_cpu_s"]
                                       / result["mtail"]["lines_per_cpu_s"])
    result["goal_ratio"] = GOAL_RATIO
    return result


def markdown(r: dict[str, Any]) -> str:
    """The summary table."""
    p, m, rp, small = r["params"], r["mtail"], r["replay"], r["replay_10pct"]
    rows = [
        ("mtail (Debian) --one_shot", m),
        ("registry-slo replay", rp),
    ]
    lines = [
        f"Ingest: {p['lines']:,} lines ({p['bytes'] / 2**20:.0f} MiB) of distribution JSON log, "
        f"one run each ({r['machine']['date']}, load average "
        f"{p['loadavg_before'][0]:.1f} before / {p['loadavg_after'][0]:.1f} after)",
        "",
        "| tool | wall s | lines/s | CPU s | lines per CPU-s | peak RSS MiB |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
        *(f"| {name} | {x['wall_s']:.2f} | {x['lines_per_s']:,.0f} | {x['cpu_s']:.2f} | "
          f"{x['lines_per_cpu_s']:,.0f} | {x['max_rss_mib']:.1f} |" for name, x in rows),
        "",
        f"- same counters from both: {r['counters_agree']} ({r['requests']:,} requests in "
        f"{len(r['requests_by_method_status'])} method/status pairs, duration sum "
        f"{r['duration_seconds_sum']:.3f} s)",
        f"- throughput ratio replay / mtail: **{r['ratio_lines_per_s']:.2f}x** wall, "
        f"**{r['ratio_lines_per_cpu_s']:.2f}x** per CPU-second (goal {r['goal_ratio']:.0f}x)",
        f"- replay peak RSS: {small['max_rss_mib']:.1f} MiB at {small['lines']:,} lines, "
        f"{rp['max_rss_mib']:.1f} MiB at {p['lines']:,} lines",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print its summary."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--keep", type=Path, default=None,
                        help="keep (and reuse) the generated logs in this directory")
    args = parser.parse_args(argv)
    if args.keep is not None:
        args.keep.mkdir(parents=True, exist_ok=True)
        result = bench(args.lines, args.keep, args.seed)
    else:
        with tempfile.TemporaryDirectory(prefix="ingest-bench-") as tmp:
            result = bench(args.lines, Path(tmp), args.seed)
    path = write_result("ingest", result)
    print(markdown(result))
    print(f"\n(raw: {path})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
