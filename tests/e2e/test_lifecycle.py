"""A part of the exporter that dies stops it, with a non-zero exit status, after the same
teardown as a clean stop; what it committed before is there after a restart.

The part killed for real is the SLI engine: its SQLite store becomes unwritable while the
exporter runs. Tests run as root, whom permission bits do not stop, so the store's
write-ahead log gets the immutable attribute (``chattr +i``): every write to it fails
(``EPERM``, a "disk I/O error" for SQLite), through the descriptor SQLite holds too.
After ``MAX_FAILED_FLUSHES`` failed writes in a row the engine gives the store up, and
the exporter stops. Traffic comes from a real registry (Debian's docker-registry) whose
JSON log the exporter follows.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import sqlite3
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from conftest import require_binary
from harness import push_image
from harness.immutable import immutable
from harness.otlp import OTLPReceiver
from harness.serve import ServeProcess
from prometheus_client.parser import text_string_to_metric_families

from registry_slo.config import Settings
from registry_slo.devenv import LocalRegistry, free_port
from registry_slo.exporter import Exporter, ExporterFailed
from registry_slo.sli.engine import COARSE_WIDTH, MAX_FAILED_FLUSHES
from registry_slo.sli.store import STORE_FILE, StoreError

ACCEPT = {"Accept": "application/vnd.oci.image.manifest.v1+json"}
SLO = "manifest-pulls"
SOURCE = "registry-log"


def exporter_config(tmp_path: Path, registry: LocalRegistry) -> dict[str, Any]:
    """A traffic SLO on the registry's log, committed every 50 ms."""
    return {
        "listen": f"127.0.0.1:{free_port()}",
        "log_format": "json",
        "state_dir": str(tmp_path / "state"),
        "regions": [{"name": "local", "url": registry.url,
                     "probe": {"enabled": ["auth"], "interval": "30s"}}],
        "ingest": {
            "checkpoint_dir": str(tmp_path / "checkpoints"),
            "poll_interval": "50ms",
            "checkpoint_interval": "50ms",
            "logs": [{"name": SOURCE, "region": "local", "format": "distribution",
                      "paths": [str(registry.log_path)], "read_from": "end"}],
        },
        "slos": [{"name": SLO, "objective": 99,
                  "sli": {"kind": "traffic_success", "operations": ["pull_manifest"],
                          "errors": ["not_found"]}}],
    }


def pull(client: httpx.Client, url: str, start: int, stop: int) -> None:
    """Requests ``start`` … ``stop - 1``; every tenth is a missing tag (a 404: bad)."""
    for i in range(start, stop):
        tag = "missing" if i % 10 == 9 else "v1"
        client.get(f"{url}/v2/team/app/manifests/{tag}", headers=ACCEPT)


def committed(state_dir: Path) -> tuple[float, float]:
    """The SLO's (events, bad events) of the period as committed to the store (read
    beside the running exporter: SQLite's WAL mode lets readers in)."""
    uri = f"file:{state_dir / STORE_FILE}?mode=ro"
    with contextlib.closing(sqlite3.connect(uri, uri=True)) as db:
        total, bad = db.execute(
            "SELECT COALESCE(SUM(total), 0), COALESCE(SUM(bad), 0) FROM buckets "
            "WHERE target = ? AND width = ?", (f"{SLO}/local", COARSE_WIDTH),
        ).fetchone()
    return float(total), float(bad)


def period(base: str) -> tuple[float, float]:
    """The SLO's (events, bad events) of the period, as ``/api/v1/slo`` says."""
    api = httpx.get(f"{base}/api/v1/slo", timeout=5).json()
    (entry,) = [s for s in api["slos"] if s["slo"] == SLO]
    window = entry["windows"][-1]
    assert window["window"] == entry["period"]
    return window["events"], window["bad_events"]


def sample(base: str, name: str, **labels: str) -> float | None:
    """One sample of ``/metrics``."""
    for family in text_string_to_metric_families(httpx.get(f"{base}/metrics", timeout=5).text):
        for s in family.samples:
            if s.name == name and s.labels == labels:
                return s.value
    return None


def wait_until(condition: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting until {what}"
        time.sleep(0.05)


@pytest.fixture
def registry_with_log(tmp_path: Path) -> Iterator[tuple[LocalRegistry, httpx.Client]]:
    require_binary("docker-registry")
    with LocalRegistry(log_path=tmp_path / "registry.log") as registry, \
            httpx.Client(trust_env=False, timeout=5) as client:
        push_image(client, registry.url, "team/app", "v1")
        yield registry, client


def test_an_unwritable_store_stops_serve_with_status_1_and_keeps_what_was_committed(
    tmp_path: Path, registry_with_log: tuple[LocalRegistry, httpx.Client]
) -> None:
    registry, client = registry_with_log
    config = exporter_config(tmp_path, registry)
    path = tmp_path / "regions.yaml"
    path.write_text(yaml.safe_dump(config))
    log = tmp_path / "exporter.log"
    state = tmp_path / "state"

    serve = ServeProcess(path, log)
    try:
        # The log source has found the end of the log: what follows is counted.
        wait_until(lambda: sample(serve.base, "registry_slo_ingest_last_poll_timestamp_seconds",
                                  source=SOURCE) is not None, "ingest polled")
        pull(client, registry.url, 0, 100)
        wait_until(lambda: committed(state) == (100, 10), "100 requests were committed")
        assert period(serve.base) == (100, 10)
        with immutable(state / f"{STORE_FILE}-wal"):
            started = time.monotonic()
            pull(client, registry.url, 100, 120)  # to be written, and not writable
            status = serve.wait(timeout=20)
            took = time.monotonic() - started
    finally:
        if serve.proc.poll() is None:
            serve.kill()
    assert status == 1, serve.tail()
    assert took < 10, took
    stderr = log.read_text()
    assert (f"registry-slo: stopped: the SLI engine failed: StoreError: {state / STORE_FILE}: "
            f"the SLO store could not be written {MAX_FAILED_FLUSHES} times in a row "
            "(last: disk I/O error)") in stderr, stderr[-3000:]
    assert '"component": "sli_engine"' in stderr
    # Nothing was committed after the store became unwritable, and nothing before is lost.
    assert committed(state) == (100, 10)

    serve = ServeProcess(path, log)
    try:
        # Restored from the store; the 20 requests read again from the log position
        # committed with the first 100, counted once.
        assert period(serve.base)[0] >= 100
        wait_until(lambda: period(serve.base) == (120, 12), "the 20 requests were counted")
        wait_until(lambda: committed(state) == (120, 12), "they were committed")
    finally:
        serve.stop()  # SIGTERM: exit status 0


async def test_a_dead_part_is_counted_and_everything_is_torn_down(
    tmp_path: Path, registry_with_log: tuple[LocalRegistry, httpx.Client]
) -> None:
    registry, client = registry_with_log
    config = exporter_config(tmp_path, registry)
    state = tmp_path / "state"
    with OTLPReceiver() as receiver:
        config["otel"] = {"traces": True, "endpoint": receiver.endpoint}
        exporter = Exporter(Settings.model_validate(config))
        stop = asyncio.Event()
        running = asyncio.create_task(exporter.run(stop))

        def value(name: str, **labels: str) -> float | None:
            return exporter.metrics.registry.get_sample_value(name, labels)

        async def until(condition: Callable[[], bool], what: str) -> None:
            deadline = time.monotonic() + 30
            while not condition():
                assert not running.done(), f"the exporter stopped before {what}"
                assert time.monotonic() < deadline, f"timed out waiting until {what}"
                await asyncio.sleep(0.05)

        await until(lambda: value("registry_slo_ingest_last_poll_timestamp_seconds",
                                  source=SOURCE) is not None, "ingest polled")
        await until(lambda: (value("registry_slo_probe_requests_total", region="local",
                                   probe="auth") or 0) >= 1, "the auth probe ran")
        await asyncio.to_thread(pull, client, registry.url, 0, 10)
        await until(lambda: (state / STORE_FILE).exists() and committed(state) == (10, 1),
                    "10 requests were committed")
        with immutable(state / f"{STORE_FILE}-wal"):
            await asyncio.to_thread(pull, client, registry.url, 10, 20)
            with pytest.raises(ExporterFailed) as failed:
                await asyncio.wait_for(running, 20)
        (part, error), = failed.value.failures
        assert part == "sli_engine" and isinstance(error, StoreError)
        assert stop.is_set()
        # Counted: the dead part once, each failed write of the store.
        assert value("registry_slo_internal_errors_total", component="sli_engine") == 1
        failed_writes = value("registry_slo_internal_errors_total", component="slo_store")
        assert failed_writes is not None and failed_writes >= MAX_FAILED_FLUSHES
        # Torn down: ingest closed its files (and staged its position), the store is
        # closed, the region clients too, every span was exported.
        assert value("registry_slo_ingest_files", source=SOURCE) == 0
        assert exporter.engine.store is None
        assert all(s.client._http.is_closed for s in exporter.states.values())
        accounting = exporter.otel.accounting
        assert accounting is not None and accounting.ended >= 1
        assert accounting.exported == accounting.ended and accounting.queued == 0
        assert any(span.name == "probe auth" for span in receiver.spans)
    assert committed(state) == (10, 1)
    # The port is free again: the HTTP server stopped too.
    host, port = config["listen"].rsplit(":", 1)
    with contextlib.closing(socket.socket()) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as a server binds
        sock.bind((host, int(port)))


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)

