"""Webhook load: events per second and answer latency of ``registry-slo serve``'s receiver,
with durable acknowledgement (SLO store: the answer waits for the commit of its events)
against the same exporter without a store (answered once counted), in the same run.

One command::

    .venv/bin/python -m bench.webhook_load        # defaults: --seconds 20 --clients 8

For each side and for envelopes of 1 and of 10 events, ``--clients`` concurrent clients
POST distribution envelopes (every event a new id: a manifest pull) for ``--seconds``
seconds, each waiting for its answer before the next, as distribution's sink does per
endpoint. Reported: events/s accepted, answer latency p50/p99, non-2xx answers; then the
exporter's own count of events is checked against the events sent.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import yaml

from bench._util import machine, percentile, write_result
from registry_slo.devenv import free_port
from tests.harness.serve import ServeProcess


def _envelope(events: int) -> bytes:
    now = time.strftime("%Y-%m-%dT%H:%M:%S.000000000Z", time.gmtime())
    return json.dumps({"events": [{
        "id": str(uuid.uuid4()), "timestamp": now, "action": "pull",
        "target": {"mediaType": "application/vnd.oci.image.manifest.v1+json",
                   "size": 500, "digest": "sha256:" + "ab" * 32, "length": 500,
                   "repository": "team/app", "tag": "v1",
                   "url": "http://registry/v2/team/app/manifests/v1"},
        "request": {"id": str(uuid.uuid4()), "addr": "10.0.0.1:5000", "host": "registry",
                    "method": "GET", "useragent": "containerd/1.7"},
        "actor": {}, "source": {"addr": "registry:5000", "instanceID": "bench"},
    } for _ in range(events)]}).encode()


def _config(work: Path, durable: bool) -> tuple[Path, str, str]:
    listen, hooks = f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"
    config: dict[str, Any] = {
        "listen": listen,
        "log_format": "json",
        "log_level": "warning",
        "state_dir": str(work / f"state-{durable}"),
        "regions": [{"name": "r", "url": "http://127.0.0.1:9",
                     "probe": {"enabled": ["auth"], "interval": "10m"}}],
        "ingest": {"notifications": {
            "listen": hooks, "dedup_memory": 1_000_000,
            "endpoints": [{"name": "hooks", "region": "r", "format": "distribution"}]}},
    }
    if durable:
        config["slos"] = [{"name": "pulls", "objective": 99, "sli": {
            "kind": "traffic_success", "operations": ["pull_manifest"],
            "sources": ["hooks"]}}]
    path = work / f"regions-{durable}.yaml"
    path.write_text(yaml.safe_dump(config))
    return path, f"http://{listen}", f"http://{hooks}/notifications/hooks"


async def _load(url: str, clients: int, seconds: float, events: int) -> dict[str, Any]:
    latencies: list[float] = []
    failures = 0
    deadline = time.monotonic() + seconds

    async def client() -> None:
        nonlocal failures
        async with httpx.AsyncClient(timeout=30, trust_env=False) as http:
            while time.monotonic() < deadline:
                body = _envelope(events)
                started = time.perf_counter()
                response = await http.post(url, content=body, headers={
                    "content-type": "application/vnd.docker.distribution.events.v1+json"})
                latencies.append(time.perf_counter() - started)
                if response.status_code != 200:
                    failures += 1

    started = time.monotonic()
    await asyncio.gather(*(client() for _ in range(clients)))
    elapsed = time.monotonic() - started
    return {
        "envelopes": len(latencies), "events": len(latencies) * events,
        "events_per_second": len(latencies) * events / elapsed,
        "latency_ms": {"p50": percentile(latencies, 0.5) * 1000,
                       "p99": percentile(latencies, 0.99) * 1000},
        "non_2xx": failures,
    }


def _counted(base: str) -> float:
    text = httpx.get(f"{base}/metrics", timeout=30).text
    total = 0.0
    for line in text.splitlines():
        if line.startswith("registry_slo_registry_requests_total{") and 'source="hooks"' in line:
            total += float(line.rsplit(" ", 1)[1])
    return total


def run_side(work: Path, durable: bool, clients: int, seconds: float) -> dict[str, Any]:
    """One exporter (durable or not): both envelope sizes, then its own count."""
    path, base, url = _config(work, durable)
    serve = ServeProcess(path, work / f"exporter-{durable}.log", timeout=60)
    try:
        results = {f"{n}_per_envelope": asyncio.run(_load(url, clients, seconds, n))
                   for n in (1, 10)}
        sent = sum(r["events"] for r in results.values())
        return {"durable": durable, **results, "events_sent": sent,
                "events_counted": _counted(base)}
    finally:
        serve.stop()


def main(argv: list[str] | None = None) -> int:
    """Run both sides; print a Markdown table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--clients", type=int, default=8)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="webhook-load-") as tmp:
        sides = [run_side(Path(tmp), durable, args.clients, args.seconds)
                 for durable in (False, True)]
    path = write_result("webhook-load", {"machine": machine(), "params": vars(args),
                                         "results": sides})
    lines = ["| answered | events per envelope | events/s | latency p50 / p99 | non-2xx "
             "| counted / sent |", "| --- | ---: | ---: | ---: | ---: | ---: |"]
    for side in sides:
        name = "after the commit (SLO store)" if side["durable"] else "once counted (no store)"
        for n in (1, 10):
            r = side[f"{n}_per_envelope"]
            lines.append(f"| {name} | {n} | {r['events_per_second']:,.0f} | "
                         f"{r['latency_ms']['p50']:.1f} / {r['latency_ms']['p99']:.1f} ms | "
                         f"{r['non_2xx']} | {side['events_counted']:,.0f} / "
                         f"{side['events_sent']:,} |")
    print("\n".join(lines))
    print(f"\n(raw results: {path})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
