"""Helpers shared by the benchmarks: statistics, /proc sampling, profiles, results."""

from __future__ import annotations

import hashlib
import json
import math
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
CLK_TCK = os.sysconf("SC_CLK_TCK")


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q`` quantile (0..1) with linear interpolation between closest ranks."""
    ordered = sorted(values)
    if not ordered:
        return math.nan
    pos = (len(ordered) - 1) * q
    lo = math.floor(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def summary(values: Sequence[float]) -> dict[str, float]:
    """n, min, median, p90, p99, max and mean of ``values``."""
    return {
        "n": len(values),
        "min": min(values, default=math.nan),
        "median": percentile(values, 0.5),
        "p90": percentile(values, 0.9),
        "p99": percentile(values, 0.99),
        "max": max(values, default=math.nan),
        "mean": sum(values) / len(values) if values else math.nan,
    }


def cpu_times(pid: int) -> tuple[float, float]:
    """User and system CPU seconds of process ``pid`` (all its threads)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return int(fields[11]) / CLK_TCK, int(fields[12]) / CLK_TCK  # utime, stime


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process ``pid``."""
    return sum(cpu_times(pid))


def wait_quiet(busy_below: float = 0.3, timeout: float = 300.0) -> dict[str, float]:
    """Wait (at most ``timeout`` s) until the machine is less than ``busy_below`` busy
    over a 5 s sample: other sessions share this machine. Returns what was seen."""
    started = time.monotonic()
    while True:
        before = system_jiffies()
        time.sleep(5)
        busy = system_usage(before, system_jiffies())["busy"]
        waited = time.monotonic() - started
        if busy < busy_below or waited >= timeout:
            return {"busy_at_start": round(busy, 3), "waited_s": round(waited, 1)}


def status_kib(pid: int, key: str) -> int:
    """A ``kB`` field of ``/proc/PID/status`` (``VmRSS``, ``VmHWM``)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise KeyError(key)


def system_jiffies() -> dict[str, int]:
    """The machine-wide ``cpu`` line of ``/proc/stat``."""
    names = ("user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal")
    values = Path("/proc/stat").read_text().splitlines()[0].split()[1:9]
    return dict(zip(names, map(int, values), strict=True))


def system_usage(before: dict[str, int], after: dict[str, int]) -> dict[str, float]:
    """Busy and steal share of all cores between two :func:`system_jiffies` samples."""
    delta = {k: after[k] - before[k] for k in before}
    total = sum(delta.values()) or 1
    return {
        "busy": 1 - (delta["idle"] + delta["iowait"]) / total,
        "steal": delta["steal"] / total,
    }


@dataclass
class Sample:
    """One flattened sample of a scrape."""

    name: str
    labels: dict[str, str]
    value: float


def parse_metrics(text: str) -> list[Sample]:
    """Flatten a Prometheus text-format payload."""
    return [
        Sample(s.name, dict(s.labels), s.value)
        for family in text_string_to_metric_families(text)
        for s in family.samples
    ]


def total(samples: Iterable[Sample], name: str, **match: str) -> float:
    """Sum of the samples called ``name`` whose labels include ``match``."""
    return sum(
        s.value for s in samples
        if s.name == name and all(s.labels.get(k) == v for k, v in match.items())
    )


def histogram_buckets(samples: Iterable[Sample], name: str, **match: str) -> dict[float, float]:
    """Cumulative bucket counts of histogram ``name`` summed over matching series."""
    buckets: defaultdict[float, float] = defaultdict(float)
    for s in samples:
        if s.name == name + "_bucket" and all(s.labels.get(k) == v for k, v in match.items()):
            buckets[float(s.labels["le"])] += s.value
    return dict(buckets)


def bucket_delta(after: dict[float, float], before: dict[float, float]) -> dict[float, float]:
    """Bucket counts observed between two scrapes."""
    return {le: count - before.get(le, 0.0) for le, count in after.items()}


def histogram_quantile(q: float, buckets: dict[float, float]) -> float:
    """Prometheus' ``histogram_quantile``: linear interpolation inside the bucket.

    Returns the highest finite bound when the quantile falls in the ``+Inf`` bucket.
    """
    bounds = sorted(buckets)
    count = buckets.get(math.inf, 0.0)
    if count <= 0:
        return math.nan
    rank = q * count
    lower, below = 0.0, 0.0
    for le in bounds:
        if buckets[le] >= rank:
            if math.isinf(le):
                return lower
            inside = buckets[le] - below
            return lower + (le - lower) * ((rank - below) / inside if inside else 1.0)
        lower, below = le, buckets[le]
    return lower


def py_spy() -> str | None:
    """The py-spy binary (``pip install py-spy`` into the venv), if any."""
    beside = Path(sys.executable).parent / "py-spy"
    return str(beside) if beside.exists() else shutil.which("py-spy")


def profile(
    pid: int, seconds: float, focus: str = "", rate: int = 250, top: int = 12
) -> dict[str, Any]:
    """Sample ``pid`` with py-spy and name its hot spots (self and inclusive shares).

    Blocks for ``seconds``. Only stacks with a frame containing ``focus`` count; shares
    are of those stacks (py-spy leaves out idle threads, so of CPU time, not wall time).
    """
    binary = py_spy()
    if binary is None:
        return {"error": "py-spy not installed (.venv/bin/pip install py-spy)"}
    with tempfile.TemporaryDirectory(prefix="bench-pyspy-") as tmp:
        out = Path(tmp) / "stacks.txt"
        proc = subprocess.run(
            [binary, "record", "--pid", str(pid), "--duration", str(int(seconds)),
             "--rate", str(rate), "--format", "raw", "--output", str(out), "--nonblocking"],
            capture_output=True, text=True, timeout=seconds + 60, check=False,
        )
        if proc.returncode != 0 or not out.exists():
            return {"error": (proc.stderr or proc.stdout).strip()[-500:]}
        lines = out.read_text().splitlines()
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    tails: Counter[str] = Counter()
    samples = 0
    for line in lines:
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [_frame(f) for f in stack.split(";") if f]
        if focus and not any(focus in f for f in frames):
            continue
        samples += count
        if frames:
            own[frames[-1]] += count
            tails[" < ".join(reversed(frames[-6:]))] += count
        for frame in set(frames):
            inclusive[frame] += count
    share = 1 / samples if samples else 0.0
    return {
        "samples": samples,
        "rate_hz": rate,
        "seconds": seconds,
        "focus": focus,
        "self": [(name, round(n * share, 3)) for name, n in own.most_common(top)],
        "inclusive": [(name, round(n * share, 3)) for name, n in inclusive.most_common(top * 3)],
        "stack_tails": [(tail, round(n * share, 3)) for tail, n in tails.most_common(top)],
    }


def _frame(frame: str) -> str:
    """``func (path/to/module.py:12)`` -> ``func (module.py)``."""
    name, _, where = frame.partition(" (")
    module = where.rstrip(")").rpartition(":")[0]
    parts = Path(module).parts
    short = "/".join(parts[-2:]) if len(parts) > 1 else module
    return f"{name} ({short})"


def _version(argv: list[str]) -> str:
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=10, check=False)
    except OSError:
        return "not installed"
    return (out.stdout or out.stderr).strip().splitlines()[0] if (out.stdout or out.stderr) else ""


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    cpuinfo = Path("/proc/cpuinfo").read_text().splitlines()
    model = next((line.split(":", 1)[1].strip() for line in cpuinfo
                  if line.startswith("model name")), platform.processor())
    mem = next(line.split()[1] for line in Path("/proc/meminfo").read_text().splitlines()
               if line.startswith("MemTotal"))
    commit = _version(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"])
    dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain"],
                           capture_output=True, text=True, check=False).stdout.strip() != ""
    sources = hashlib.sha256()
    for path in sorted((ROOT / "registry_slo").rglob("*.py")):
        sources.update(path.read_bytes())
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "registry_slo_sources_sha256": sources.hexdigest()[:12],
        "cpu": model,
        "cores": os.cpu_count(),
        "mem_gib": round(int(mem) / 2**20, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "loadavg_at_start": os.getloadavg(),
        "git": commit + ("+dirty" if dirty else ""),
        "curl": _version(["curl", "--version"]),
        "blackbox_exporter": _version(["prometheus-blackbox-exporter", "--version"]),
    }


def write_result(name: str, data: dict[str, Any]) -> Path:
    """Write ``bench/results/NAME-STAMP.json`` (and ``NAME-latest.json``); return its path."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%S")
    text = json.dumps(data, indent=2, default=str) + "\n"
    path = RESULTS / f"{name}-{stamp}.json"
    path.write_text(text)
    (RESULTS / f"{name}-latest.json").write_text(text)
    return path
