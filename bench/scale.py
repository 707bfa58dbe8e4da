"""Benchmark 2: one ``registry-slo serve`` process probing many regions.

``regions`` region names share ``registries`` real ``docker-registry`` processes (each
region has its own probe repository), all three probes (push, pull, auth) every
``interval`` seconds. After the exporter is ready (every probe ran once) and a warm-up,
a measurement window gives: the exporter's CPU share of one core (``/proc/PID/stat``),
its RSS (``/proc/PID/status``), the p99 of schedule drift (its own
``registry_slo_probe_schedule_delay_seconds`` histogram, window delta, interpolated like
``histogram_quantile``) and probe failures. ``/metrics`` is scraped every interval during
the window, like Prometheus would (that cost is in the CPU figure); a burst of timed GETs
follows the window for render-time statistics.

The peer, measured in the same window on the same machine: Debian's blackbox_exporter
probing the same regions' ``/v2/`` over HTTP at the same interval (driven by this
process, spread evenly over the interval, as Prometheus would), and the registries' CPU.
"""

from __future__ import annotations

import asyncio
import contextlib
import cProfile
import json
import math
import os
import pstats
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import IO, Any

import httpx
import yaml
from prometheus_client import generate_latest
from prometheus_client.openmetrics.exposition import generate_latest as openmetrics_latest

from bench._util import (
    Sample,
    bucket_delta,
    cpu_times,
    histogram_buckets,
    histogram_quantile,
    machine,
    parse_metrics,
    percentile,
    profile,
    status_kib,
    summary,
    system_jiffies,
    system_usage,
    total,
    wait_quiet,
    write_result,
)
from registry_slo.config import load_config
from registry_slo.devenv import LocalRegistry, free_port
from registry_slo.observation import Observation
from registry_slo.telemetry.metrics import ExporterMetrics

GOALS = {"cpu_share": 0.25, "rss_mib": 150.0, "drift_p99_s": 1.0, "render_ms": 50.0}
PROMETHEUS_ACCEPT = (
    "application/openmetrics-text;version=1.0.0;q=0.5,"
    "application/openmetrics-text;version=0.0.1;q=0.4,"
    "text/plain;version=0.0.4;q=0.3,*/*;q=0.2"
)
_QUIET_REGISTRY = {"log": {"accesslog": {"disabled": True}}}
_BLACKBOX_CONFIG = {
    "modules": {
        "http_v2": {
            "prober": "http",
            "timeout": "10s",
            "http": {"valid_status_codes": [200], "preferred_ip_protocol": "ip4",
                     "ip_protocol_fallback": False},
        }
    }
}


def _spawn(argv: list[str], log: Path, stack: ExitStack) -> subprocess.Popen[bytes]:
    sink: IO[bytes] = stack.enter_context(log.open("wb"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("REGISTRY_SLO_")}
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=sink, stderr=sink, env=env,
                            start_new_session=True)

    def stop() -> None:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    stack.callback(stop)
    return proc


async def _wait_ready(url: str, proc: subprocess.Popen[bytes], timeout: float) -> float:
    started = time.monotonic()
    async with httpx.AsyncClient(trust_env=False, timeout=5) as client:
        while time.monotonic() - started < timeout:
            if proc.poll() is not None:
                raise RuntimeError(f"{proc.args!r} exited with status {proc.returncode}")
            with contextlib.suppress(httpx.HTTPError):
                if (await client.get(url)).status_code == 200:
                    return time.monotonic() - started
            await asyncio.sleep(0.5)
    raise RuntimeError(f"{url} not ready within {timeout:.0f}s")


async def _drive_blackbox(
    url: str, targets: list[str], interval: float, log: list[tuple[float, bool, float]]
) -> None:
    """Ask blackbox to probe every target once per interval, spread evenly."""
    loop = asyncio.get_running_loop()
    async with httpx.AsyncClient(trust_env=False, timeout=interval) as client:

        async def one(offset: float, target: str) -> None:
            next_at = loop.time() + offset
            while True:
                await asyncio.sleep(max(0.0, next_at - loop.time()))
                took = math.nan
                try:
                    answer = await client.get(
                        url, params={"module": "http_v2", "target": target}
                    )
                    ok = answer.status_code == 200 and "\nprobe_success 1" in answer.text
                    for line in answer.text.splitlines():
                        if line.startswith("probe_duration_seconds "):
                            took = float(line.split()[1])
                except httpx.HTTPError:
                    ok = False
                log.append((time.monotonic(), ok, took))
                next_at += interval

        step = interval / len(targets)
        await asyncio.gather(*(one(i * step, t) for i, t in enumerate(targets)))


async def _scrape(client: httpx.AsyncClient, url: str) -> list[Sample]:
    text = (await client.get(url)).text
    return await asyncio.to_thread(parse_metrics, text)


async def _timed_get(url: str, prometheus: bool) -> dict[str, float]:
    """One GET of /metrics timed by curl (time to first byte ~ render time)."""
    headers = ["-H", f"Accept: {PROMETHEUS_ACCEPT}", "-H", "Accept-Encoding: gzip"]
    proc = await asyncio.create_subprocess_exec(
        "curl", "-sS", "--noproxy", "*", "-o", "/dev/null",
        "-w", "%{http_code} %{time_starttransfer} %{time_total} %{size_download}",
        *(headers if prometheus else []), url,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    out, err = await proc.communicate()
    code, ttfb, total_time, size = out.decode().split()
    if code != "200":
        raise RuntimeError(f"GET {url}: {code} {err.decode()}")
    return {"ttfb_ms": float(ttfb) * 1000, "total_ms": float(total_time) * 1000,
            "bytes": float(size)}


def _snapshot(pids: dict[str, list[int]]) -> dict[str, Any]:
    times = {name: [cpu_times(p) for p in group] for name, group in pids.items()}
    return {
        "t": time.monotonic(),
        "cpu": {name: sum(u + s for u, s in ts) for name, ts in times.items()},
        "sys": {name: sum(s for _, s in ts) for name, ts in times.items()},
        "jiffies": system_jiffies(),
    }


def _start_spread(samples: list[Sample], interval: float) -> float:
    """Share of probe starts (last run, modulo the interval) in the busiest third of it."""
    phases = sorted(s.value % interval for s in samples
                    if s.name == "registry_slo_probe_last_run_timestamp_seconds")
    if not phases:
        return math.nan
    width, best = interval / 3, 0
    doubled = phases + [p + interval for p in phases]
    hi = 0
    for lo, start in enumerate(phases):
        hi = max(hi, lo)
        while hi < len(doubled) and doubled[hi] < start + width:
            hi += 1
        best = max(best, hi - lo)
    return best / len(phases)


def _window_figures(before: list[Sample], after: list[Sample], seconds: float,
                    regions: int, interval: float) -> dict[str, Any]:
    """Probe runs, failures, skips, drift and durations between two scrapes."""
    def delta(name: str, **match: str) -> float:
        return total(after, name, **match) - total(before, name, **match)

    drift = bucket_delta(
        histogram_buckets(after, "registry_slo_probe_schedule_delay_seconds"),
        histogram_buckets(before, "registry_slo_probe_schedule_delay_seconds"),
    )
    failures: defaultdict[str, float] = defaultdict(float)
    for s in after:
        if s.name == "registry_slo_probe_failures_total":
            key = f"{s.labels['probe']}/{s.labels['reason']}"
            failures[key] += s.value
    for s in before:
        if s.name == "registry_slo_probe_failures_total":
            failures[f"{s.labels['probe']}/{s.labels['reason']}"] -= s.value
    durations = {}
    for kind in ("push", "pull", "auth"):
        buckets = bucket_delta(
            histogram_buckets(after, "registry_slo_probe_duration_seconds", probe=kind),
            histogram_buckets(before, "registry_slo_probe_duration_seconds", probe=kind),
        )
        durations[kind] = {
            "runs": buckets.get(float("inf"), 0.0),
            "p50_s": histogram_quantile(0.5, buckets),
            "p99_s": histogram_quantile(0.99, buckets),
        }
    runs = delta("registry_slo_probe_requests_total")
    return {
        "probe_runs": runs,
        "probe_runs_expected": regions * 3 * seconds / interval,
        "probe_failures": sum(failures.values()),
        "probe_failures_by_kind": {k: v for k, v in failures.items() if v},
        "probe_skipped": delta("registry_slo_probe_skipped_total"),
        "drift_observations": drift.get(float("inf"), 0.0),
        "drift_p50_s": histogram_quantile(0.5, drift),
        "drift_p99_s": histogram_quantile(0.99, drift),
        "drift_buckets": {str(k): v for k, v in sorted(drift.items())},
        "probe_duration": durations,
    }


def _families(samples: list[Sample]) -> dict[str, int]:
    counts: Counter[str] = Counter()
    for s in samples:
        name = s.name
        for suffix in ("_bucket", "_count", "_sum"):
            name = name.removesuffix(suffix)
        counts[name] += 1
    return dict(counts.most_common(8))


def _log_summary(path: Path) -> dict[str, Any]:
    events: Counter[str] = Counter()
    failures: Counter[str] = Counter()
    for line in path.read_text(errors="replace").splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            events["(not json) " + line[:120]] += 1
            continue
        events[f"{record.get('level')}: {record.get('event')}"] += 1
        if record.get("event") == "probe failed":
            failures[f"{record.get('probe')}/{record.get('reason')}: "
                     f"{str(record.get('detail'))[:160]}"] += 1
    return {"events": dict(events.most_common(20)), "failures": dict(failures.most_common(10))}


async def _run(args: dict[str, Any], work: Path, stack: ExitStack) -> dict[str, Any]:
    regions, interval = int(args["regions"]), float(args["interval"])
    registries = [
        stack.enter_context(LocalRegistry(log_level="warn", extra_config=_QUIET_REGISTRY))
        for _ in range(int(args["registries"]))
    ]
    listen = f"127.0.0.1:{free_port()}"
    config: dict[str, Any] = {
        "listen": listen,
        "log_format": "json",
        "log_level": "info",
        "defaults": {"probe": {"interval": f"{interval:g}s", "timeout": "10s",
                               "blob_size": args["blob_size"]}},
        "regions": [
            {"name": f"bench-{i:03d}", "url": registries[i % len(registries)].url,
             "probe": {"repository": f"bench/region-{i:03d}"}}
            for i in range(regions)
        ],
    }
    config_path = work / "regions.yaml"
    config_path.write_text(yaml.safe_dump(config, sort_keys=False))
    blob_size = load_config(config_path).regions[0].probe.blob_size
    base = f"http://{listen}"

    blackbox: subprocess.Popen[bytes] | None = None
    bb_url = ""
    if args["blackbox"]:
        (work / "blackbox.yml").write_text(yaml.safe_dump(_BLACKBOX_CONFIG))
        bb_listen = f"127.0.0.1:{free_port()}"
        blackbox = _spawn(
            ["prometheus-blackbox-exporter", f"--config.file={work / 'blackbox.yml'}",
             f"--web.listen-address={bb_listen}", "--log.level=warn"],
            work / "blackbox.log", stack,
        )
        bb_url = f"http://{bb_listen}/probe"
        await _wait_ready(f"http://{bb_listen}/-/healthy", blackbox, 30)

    exporter = _spawn(
        [sys.executable, "-m", "registry_slo", "serve", "--config", str(config_path)],
        work / "exporter.log", stack,
    )
    print(f"  exporter pid {exporter.pid}, {regions} regions on {len(registries)} registries, "
          f"blob {blob_size} B; waiting for /readyz", flush=True)
    ready_after = await _wait_ready(f"{base}/readyz", exporter, 180)

    bb_log: list[tuple[float, bool, float]] = []
    bb_task = None
    if blackbox is not None:
        targets = [r["url"] + "/v2/" for r in config["regions"]]
        bb_task = asyncio.create_task(_drive_blackbox(bb_url, targets, interval, bb_log))
    print(f"  ready after {ready_after:.1f}s; warm-up {args['warmup']}s", flush=True)
    await asyncio.sleep(float(args["warmup"]))

    pids = {"exporter": [exporter.pid], "registries": [r.pid for r in registries if r.pid],
            "bench driver": [os.getpid()]}
    if blackbox is not None:
        pids["blackbox"] = [blackbox.pid]
    client = httpx.AsyncClient(trust_env=False, timeout=30)
    window = float(args["window"])
    print(f"  measuring for {window:.0f}s", flush=True)
    before_metrics = await _scrape(client, f"{base}/metrics")
    before = _snapshot(pids)
    rss: list[int] = []
    in_window: list[dict[str, float]] = []
    next_scrape = time.monotonic()
    while time.monotonic() - before["t"] < window:
        rss.append(status_kib(exporter.pid, "VmRSS"))
        if time.monotonic() >= next_scrape:
            in_window.append(await _timed_get(f"{base}/metrics", prometheus=True))
            next_scrape += interval
        await asyncio.sleep(1.0)
    after = _snapshot(pids)
    after_metrics = await _scrape(client, f"{base}/metrics")
    rss_end, hwm = status_kib(exporter.pid, "VmRSS"), status_kib(exporter.pid, "VmHWM")
    seconds = after["t"] - before["t"]

    print(f"  timing {args['render_gets']} GETs of /metrics", flush=True)
    burst: dict[str, list[dict[str, float]]] = {"prometheus": [], "plain": []}
    for i in range(int(args["render_gets"])):
        kind = "prometheus" if i % 2 == 0 else "plain"
        burst[kind].append(await _timed_get(f"{base}/metrics", prometheus=kind == "prometheus"))
        await asyncio.sleep(0.2)

    hot: dict[str, Any] = {}
    if float(args["profile_seconds"]) > 0:
        print(f"  profiling the exporter for {args['profile_seconds']}s", flush=True)
        hot = await asyncio.to_thread(profile, exporter.pid, float(args["profile_seconds"]))
    final_metrics = await _scrape(client, f"{base}/metrics")
    await client.aclose()
    if bb_task is not None:
        bb_task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await bb_task

    cpu = {k: after["cpu"][k] - before["cpu"][k] for k in after["cpu"]}
    usage = system_usage(before["jiffies"], after["jiffies"])
    cores = os.cpu_count() or 1
    others = usage["busy"] * cores - sum(cpu.values()) / seconds
    figures = _window_figures(before_metrics, after_metrics, seconds, regions, interval)
    bb_window = [ok for t, ok, _ in bb_log if before["t"] <= t <= after["t"]]
    bb_took = [took for t, _, took in bb_log if before["t"] <= t <= after["t"]]
    render_ttfb = [g["ttfb_ms"] for g in burst["prometheus"] + in_window]
    result: dict[str, Any] = {
        "benchmark": "scale",
        "machine": machine(),
        "params": {**args, "blob_size_bytes": blob_size, "probe_timeout_s": 10,
                   "registry_log": "level warn, access log off"},
        "ready_after_s": ready_after,
        "window_s": seconds,
        "system": usage,
        "loadavg_at_end": os.getloadavg(),
        "cpu_share": {k: v / seconds for k, v in cpu.items()},
        "cpu_share_other_processes": max(0.0, others),
        "exporter_system_cpu_share": (after["sys"]["exporter"] - before["sys"]["exporter"])
        / seconds,
        "probe_starts_in_busiest_third_of_interval": _start_spread(after_metrics, interval),
        "exporter_rss_mib": {
            "window_max": max(rss) / 1024, "end": rss_end / 1024, "peak_vmhwm": hwm / 1024,
            "window_median": summary([float(r) for r in rss])["median"] / 1024,
        },
        **figures,
        "exporter_cpu_ms_per_probe": 1000 * cpu["exporter"] / max(figures["probe_runs"], 1),
        "metrics_render": {
            "ttfb_ms": summary(render_ttfb),
            "total_ms": summary([g["total_ms"] for g in burst["prometheus"] + in_window]),
            "plain_text_ttfb_ms": summary([g["ttfb_ms"] for g in burst["plain"]]),
            "payload_bytes_gzip_openmetrics": burst["prometheus"][-1]["bytes"],
            "payload_bytes_plain_text": burst["plain"][-1]["bytes"],
            "series": len(final_metrics),
            "series_by_family": _families(final_metrics),
            "in_window_ttfb_ms": summary([g["ttfb_ms"] for g in in_window]),
        },
        "totals_since_start": {
            "probe_runs": total(final_metrics, "registry_slo_probe_requests_total"),
            "probe_failures": total(final_metrics, "registry_slo_probe_failures_total"),
            "probe_skipped": total(final_metrics, "registry_slo_probe_skipped_total"),
        },
        "exporter_log": _log_summary(work / "exporter.log"),
        "profile": hot,
    }
    if blackbox is not None:
        result["blackbox"] = {
            "probes": len(bb_window),
            "failures": bb_window.count(False),
            "cpu_ms_per_probe": 1000 * cpu["blackbox"] / max(len(bb_window), 1),
            "probe_duration_p50_s": percentile([t for t in bb_took if t == t], 0.5),
            "probe_duration_p99_s": percentile([t for t in bb_took if t == t], 0.99),
        }
        result["cpu_per_probe_ratio_vs_blackbox"] = (
            result["exporter_cpu_ms_per_probe"] / result["blackbox"]["cpu_ms_per_probe"]
        )
    result["goals"] = {
        "cpu_share": (result["cpu_share"]["exporter"], GOALS["cpu_share"]),
        "rss_mib": (result["exporter_rss_mib"]["peak_vmhwm"], GOALS["rss_mib"]),
        "drift_p99_s": (figures["drift_p99_s"], GOALS["drift_p99_s"]),
        "render_ms": (result["metrics_render"]["ttfb_ms"]["median"], GOALS["render_ms"]),
        "render_p99_ms": (result["metrics_render"]["ttfb_ms"]["p99"], GOALS["render_ms"]),
    }
    result["goals_met"] = {k: v < goal for k, (v, goal) in result["goals"].items()}
    return result


def render_in_process(regions: int, repeat: int = 5) -> dict[str, Any]:
    """Render metrics shaped like the live exporter's (same regions, probes, phases) in
    this process with nothing else running: the render cost without contention.

    Uses the exporter's own render path (``ExporterMetrics.render`` when it has one,
    else prometheus-client's encoders on its registry).
    """
    metrics: Any = ExporterMetrics()
    probes = getattr(metrics, "probes", None)
    configure = probes.configure if probes is not None else metrics.configure_probe
    record = probes.record if probes is not None else metrics.record_probe
    phases = {"push": ("upload", "manifest"), "pull": ("manifest", "download"), "auth": ("auth",)}
    for i in range(regions):
        for kind, names in phases.items():
            region = f"bench-{i:03d}"
            configure(region, kind)
            record(Observation(
                region=region, operation=kind, source="probe", success=True, reason=None,
                duration_seconds=0.05, time=time.time(), phases=dict.fromkeys(names, 0.02),
            ))
    render: Callable[[bool], bytes] = getattr(metrics, "render", None) or (
        lambda om: (openmetrics_latest if om else generate_latest)(metrics.registry)
    )
    result: dict[str, Any] = {"render_path": getattr(render, "__qualname__", str(render))}
    for name, om in (("text", False), ("openmetrics", True)):
        times = []
        for _ in range(repeat):
            started = time.perf_counter()
            body = render(om)
            times.append((time.perf_counter() - started) * 1000)
        result[f"{name}_ms"] = summary(times)["median"]
        result[f"{name}_bytes"] = len(body)
    profiler = cProfile.Profile()
    profiler.runcall(render, True)
    stats = pstats.Stats(profiler).stats  # type: ignore[attr-defined]
    spent = sum(entry[2] for entry in stats.values()) or 1.0
    hot = sorted(stats.items(), key=lambda item: -item[1][2])[:4]
    result["openmetrics_self_time_top"] = [
        (f"{func} ({Path(file).name}:{line})", round(entry[2] / spent, 3))
        for (file, line, func), entry in hot
    ]
    return result


def run(
    regions: int = 200,
    registries: int = 4,
    interval: float = 15.0,
    blob_size: str = "1MiB",
    warmup: float = 30.0,
    window: float = 180.0,
    render_gets: int = 100,
    profile_seconds: float = 0.0,
    blackbox: bool = True,
) -> dict[str, Any]:
    """Run the benchmark; return (and write to ``bench/results/``) the figures."""
    args = {
        "regions": regions, "registries": registries, "interval": interval,
        "blob_size": blob_size, "warmup": warmup, "window": window,
        "render_gets": render_gets, "profile_seconds": profile_seconds, "blackbox": blackbox,
    }
    quiet = wait_quiet()
    started_on = machine()  # before the exporter starts: the code it runs
    with tempfile.TemporaryDirectory(prefix="bench-scale-") as tmp, ExitStack() as stack:
        result = asyncio.run(_run(args, Path(tmp), stack))
    result["machine"] = started_on
    result["machine_before_start"] = quiet
    result["metrics_render"]["in_process"] = render_in_process(regions)
    name = f"scale-{blob_size.lower()}"
    result["results_file"] = str(write_result(name, result))
    return result
