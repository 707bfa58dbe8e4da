"""The exporter as users run it: `registry-slo serve` in its own process."""

from __future__ import annotations

import json
import os
import platform
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml
from conftest import FaultProxyFactory
from harness import FaultMode
from prometheus_client.parser import text_string_to_metric_families

from registry_slo.devenv import LocalRegistry, free_port

EXE = [sys.executable, "-m", "registry_slo"]


def metrics_of(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


def value(samples: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str,
          **labels: str) -> float | None:
    return samples.get((name, frozenset(labels.items())))


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[object]:
    procs: list[subprocess.Popen[bytes]] = []

    def start(config: dict[str, object]) -> tuple[subprocess.Popen[bytes], str, Path]:
        port = free_port()
        config = {"listen": f"127.0.0.1:{port}", "log_format": "json", **config}
        path = tmp_path / "regions.yaml"
        path.write_text(yaml.safe_dump(config))
        log = tmp_path / "exporter.log"
        proc = subprocess.Popen([*EXE, "serve", "--config", str(path)],
                                stderr=log.open("wb"), stdout=subprocess.DEVNULL)
        procs.append(proc)
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{base}/healthz").status_code == 200:
                    return proc, base, log
            except httpx.HTTPError:
                time.sleep(0.1)
        raise AssertionError(f"exporter did not start: {log.read_text()[-2000:]}")

    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_serve_probes_and_exposes_metrics(
    serve: object, registry: LocalRegistry, fault_proxy: FaultProxyFactory
) -> None:
    proxy = fault_proxy(registry)
    proxy.set_mode(FaultMode.STALL)  # a black-holed region
    probe = {"interval": "2s", "timeout": "1s", "blob_size": "32KiB"}
    proc, base, log = serve({  # type: ignore[operator]
        "regions": [
            {"name": "good", "url": registry.url, "probe": probe},
            {"name": "blackhole", "url": proxy.url, "probe": probe},
        ]
    })
    assert httpx.get(f"{base}/readyz").status_code in (200, 503)
    deadline = time.monotonic() + 20
    while httpx.get(f"{base}/readyz").status_code != 200:
        assert time.monotonic() < deadline, "never ready"
        time.sleep(0.2)
    time.sleep(4.5)
    text = httpx.get(f"{base}/metrics").text
    samples = metrics_of(text)
    for kind in ("push", "pull", "auth"):
        assert value(samples, "registry_slo_probe_success", region="good", probe=kind) == 1
        assert value(samples, "registry_slo_probe_success", region="blackhole", probe=kind) == 0
        runs = value(samples, "registry_slo_probe_requests_total", region="good", probe=kind)
        assert runs is not None and runs >= 3, (kind, runs)
        assert value(samples, "registry_slo_probe_failures_total",
                     region="blackhole", probe=kind, reason="timeout")
    assert value(samples, "registry_slo_probe_phase_duration_seconds_count",
                 region="good", probe="pull", phase="download")
    assert (value(samples, "registry_slo_probe_bytes_total", region="good", probe="push",
                  direction="sent") or 0) > 3 * 32 * 1024
    assert value(samples, "registry_slo_build_info", version="0.1.0",
                 python=platform.python_version()) == 1
    assert "process_resident_memory_bytes" in text
    assert "_created" not in text
    # OpenMetrics when Prometheus asks for it.
    om = httpx.get(f"{base}/metrics", headers={"Accept": "application/openmetrics-text"})
    assert om.headers["content-type"].startswith("application/openmetrics-text")
    assert om.text.rstrip().endswith("# EOF")
    # Logs are JSON lines and never contain a probe failure without its reason.
    lines = [line for line in log.read_text().splitlines() if line.strip()]
    events = [json.loads(line) for line in lines]
    failed = [e for e in events if e.get("event") == "probe failed"]
    assert failed and all(e["reason"] == "timeout" and e["region"] == "blackhole" for e in failed)
    # SIGTERM stops it promptly and cleanly.
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=10) == 0


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*EXE, *args], capture_output=True, text=True, timeout=60,
                          env={**os.environ, **(env or {})})


def test_probe_once_json(registry: LocalRegistry, stopped_registry_url: str,
                         tmp_path: Path) -> None:
    config = tmp_path / "regions.yaml"
    config.write_text(yaml.safe_dump({"regions": [
        {"name": "up", "url": registry.url, "probe": {"blob_size": "16KiB"}},
        {"name": "down", "url": stopped_registry_url, "probe": {"enabled": ["pull"]}},
    ]}))
    result = run_cli("probe", "--config", str(config), "--once", "--json")
    assert result.returncode == 1, result.stderr  # one region is down
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [(r["region"], r["probe"]) for r in lines] == [
        ("up", "push"), ("up", "pull"), ("up", "auth"), ("down", "pull")]
    for line in lines:
        assert set(line) >= {"region", "probe", "success", "reason", "duration_seconds",
                             "phases", "bytes"}
    assert all(r["success"] for r in lines[:3])
    assert lines[3]["success"] is False and lines[3]["reason"] == "connect"
    only_up = run_cli("probe", "--config", str(config), "--once", "--region", "up")
    assert only_up.returncode == 0
    assert [line.split()[0] for line in only_up.stdout.splitlines()] == ["up"] * 3


def test_validate(tmp_path: Path) -> None:
    good = tmp_path / "good.yaml"
    good.write_text("regions:\n  - {name: a, url: 'http://127.0.0.1:1'}\n")
    ok = run_cli("validate", "--config", str(good))
    assert ok.returncode == 0 and "ok (1 region(s), 3 probe(s))" in ok.stdout
    bad = tmp_path / "bad.yaml"
    bad.write_text("regions:\n  - {name: a, url: 'http://127.0.0.1:1', probe: {intervl: 5s}}\n")
    failed = run_cli("validate", "--config", str(bad))
    assert failed.returncode == 2
    assert f"{bad}: regions[0].probe.intervl: unknown key" in failed.stderr


def test_serve_refuses_bad_config_naming_key(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("listen: nowhere\nregions: []\n")
    failed = run_cli("serve", "--config", str(bad))
    assert failed.returncode == 2 and f"{bad}: listen:" in failed.stderr
