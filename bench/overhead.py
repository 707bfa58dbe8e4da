"""Benchmark 1: the exporter's pull probe against curl doing the same four requests.

Both sides run against one real ``docker-registry`` holding the exporter's canary, in
turns (the order alternates every round) so that they share the machine's noise.

* exporter: :class:`~registry_slo.probes.PullProbe` through
  :func:`~registry_slo.probes.execute`; the figure is ``observation.duration_seconds``
  (the measured part: manifest by tag, manifest by digest, config and layer blobs, with
  digest checks). Each round uses a fresh client, so it opens one new connection, as in
  production (probe interval 30 s > httpx's 5 s keep-alive expiry) and as curl does.
* curl: ONE invocation fetching the same four URLs over one reused connection, with the
  OCI ``Accept`` header; the figure is the sum of curl's own ``time_total`` per transfer,
  which, like the exporter's figure, excludes process start-up and client set-up. The
  wall time of the whole curl process is recorded as well.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import subprocess
import threading
import time
from typing import Any

from bench._util import machine, profile, summary, wait_quiet, write_result
from registry_slo.config import RegionConfig
from registry_slo.devenv import LocalRegistry
from registry_slo.observation import Observation
from registry_slo.oci import media
from registry_slo.probes import PullProbe, RegionState, execute, seed_canary

GOAL_RATIO = 1.2
_CURL_FORMAT = "%{http_code} %{num_connects} %{size_download} %{time_total}\n"


async def _probe(region: RegionConfig, digest: str) -> Observation:
    state = RegionState(region)
    state.canary_digest = digest  # prepare() then seeds nothing and opens no connection
    try:
        return await execute(PullProbe(state), region.probe.timeout)
    finally:
        await state.aclose()


def _curl(urls: list[str]) -> dict[str, Any]:
    argv = ["curl", "-sS", "--noproxy", "*", "-H", "Accept: " + ", ".join(media.MANIFEST_TYPES),
            "-w", _CURL_FORMAT]
    for url in urls:
        argv += ["-o", "/dev/null", url]
    started = time.perf_counter()
    out = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)
    wall = time.perf_counter() - started
    rows = [line.split() for line in out.stdout.splitlines()]
    if out.returncode != 0 or len(rows) != len(urls) or any(r[0] != "200" for r in rows):
        raise RuntimeError(f"curl failed ({out.returncode}): {out.stdout} {out.stderr}")
    return {
        "time_total": sum(float(r[3]) for r in rows),
        "wall": wall,
        "per_request": [float(r[3]) for r in rows],
        "connects": sum(int(r[1]) for r in rows),
        "bytes": sum(int(r[2]) for r in rows),
    }


async def _profile_probe(region: RegionConfig, digest: str, seconds: float) -> dict[str, Any]:
    """py-spy the probe in this process while it runs back to back."""
    result: dict[str, Any] = {}
    sampler = threading.Thread(
        target=lambda: result.update(profile(os.getpid(), seconds, focus="PullProbe.run")),
        daemon=True,
    )
    sampler.start()
    runs = 0
    while sampler.is_alive():
        await _probe(region, digest)
        runs += 1
    result["probe_runs"] = runs
    return result


async def _measure(
    url: str, runs: int, warmup: int, profile_seconds: float
) -> dict[str, Any]:
    region = RegionConfig(name="bench", url=url)
    seeder = RegionState(region)
    digest = await seed_canary(seeder)
    manifest = (await seeder.client.get_manifest(region.probe.repository, digest)).json()
    await seeder.aclose()
    base = f"{url}/v2/{region.probe.repository}"
    urls = [
        f"{base}/manifests/{region.probe.canary_tag}",
        f"{base}/manifests/{digest}",
        f"{base}/blobs/{manifest['config']['digest']}",
        f"{base}/blobs/{manifest['layers'][0]['digest']}",
    ]
    exporter: list[Observation] = []
    curl: list[dict[str, Any]] = []
    for i in range(warmup + runs):
        pair: list[Any] = []
        for side in ("exporter", "curl") if i % 2 == 0 else ("curl", "exporter"):
            pair.append(await _probe(region, digest) if side == "exporter" else _curl(urls))
        observation = next(p for p in pair if isinstance(p, Observation))
        if not observation.success:
            raise RuntimeError(f"pull probe failed: {observation.to_json()}")
        if i >= warmup:
            exporter.append(observation)
            curl.append(next(p for p in pair if isinstance(p, dict)))
    ms = 1000.0
    exp = summary([o.duration_seconds * ms for o in exporter])
    cur = summary([c["time_total"] * ms for c in curl])
    wall = summary([c["wall"] * ms for c in curl])
    result: dict[str, Any] = {
        "benchmark": "probe-overhead",
        "machine": machine(),
        "params": {
            "runs": runs, "warmup": warmup, "blob_size": region.probe.blob_size,
            "bytes_per_run": exporter[0].bytes_received, "urls": urls,
            "curl_metric": "sum of curl -w %{time_total} over the 4 transfers",
        },
        "exporter_ms": exp,
        "exporter_phases_ms": {
            name: summary([o.phases.get(name, 0.0) * ms for o in exporter])
            for name in sorted({k for o in exporter for k in o.phases})
        },
        "curl_ms": cur,
        "curl_per_request_median_ms": [
            summary([c["per_request"][k] * ms for c in curl])["median"] for k in range(4)
        ],
        "curl_process_wall_ms": wall,
        "curl_connections_per_run": summary([c["connects"] for c in curl])["max"],
        "ratio_of_medians": exp["median"] / cur["median"],
        "ratio_of_p90": exp["p90"] / cur["p90"],
        "ratio_vs_curl_wall": exp["median"] / wall["median"],
        "difference_of_medians_ms": exp["median"] - cur["median"],
        "goal_ratio": GOAL_RATIO,
        "goal_met": exp["median"] / cur["median"] <= GOAL_RATIO,
        "raw": {
            "exporter_ms": [o.duration_seconds * ms for o in exporter],
            "curl_ms": [c["time_total"] * ms for c in curl],
            "curl_wall_ms": [c["wall"] * ms for c in curl],
        },
    }
    digest_ms = []
    for _ in range(20):
        started = time.perf_counter()
        hashlib.sha256(b"\0" * region.probe.blob_size).hexdigest()
        digest_ms.append((time.perf_counter() - started) * ms)
    result["sha256_of_blob_ms"] = summary(digest_ms)["median"]
    if profile_seconds > 0:
        result["profile"] = await _profile_probe(region, digest, profile_seconds)
    return result


def run(runs: int = 200, warmup: int = 5, profile_seconds: float = 0.0) -> dict[str, Any]:
    """Run the benchmark; return (and write to ``bench/results/``) the figures."""
    calm = wait_quiet()
    started_on = machine()
    quiet = {"log": {"accesslog": {"disabled": True}}}
    with LocalRegistry(log_level="warn", extra_config=quiet) as registry:
        result = asyncio.run(_measure(registry.url, runs, warmup, profile_seconds))
    result["machine"] = started_on
    result["machine_before_start"] = calm
    result["results_file"] = str(write_result("overhead", result))
    return result
