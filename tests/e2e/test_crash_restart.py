"""No event lost or counted twice by the SLI engine across a crash (SIGKILL) and a clean
restart of the exporter, for what ingest reads.

A real registry (Debian's docker-registry) logs JSON; clients pull a manifest 11,250
times (every tenth a missing tag: a 404), while ``registry-slo serve`` follows the log
and counts a traffic SLO. The exporter is killed with SIGKILL twice: in the middle of
live traffic, and in the middle of reading a 10,000-request backlog written while it
was stopped (it then reads 1 MiB chunks back to back while the engine commits every
50 ms). Between and after, it is restarted and stopped cleanly. The SLO's period window
must then hold exactly the requests made, and exactly the 404s as bad events: a log
position is committed in the same SQLite transaction as the counts of the lines before
it, and never with counts of lines after it.

Where each kill lands is made certain, not left to how fast the exporter reads:

* In live traffic, the clients make the first 600 requests, then wait for the kill,
  which comes once the exporter has counted 300: it cannot have counted the 1,000
  (and before any pull, the exporter has the log open, so that starting at its end
  skips none of them).
* The backlog takes the exporter a fraction of a second to read, less than one look at
  its API may take on a loaded machine. So it runs in slices of a few milliseconds and
  is frozen (SIGSTOP) in between; while it is frozen, the test reads the log position
  committed in its SLO store, and kills it, still frozen, at the first position inside
  the backlog: part of the backlog committed with its counts, the rest not.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from conftest import require_binary
from harness import push_image
from harness.serve import ServeProcess
from prometheus_client.parser import text_string_to_metric_families

from registry_slo.devenv import LocalRegistry, free_port
from registry_slo.sli.store import STORE_FILE

LIVE = 1250
"""Requests made while the exporter runs (a kill in their middle)."""
REQUESTS = LIVE + 10_000
"""All requests: the rest are made while the exporter is stopped (a kill while it
reads them)."""
ACCEPT = {"Accept": "application/vnd.oci.image.manifest.v1+json"}
SOURCE = "registry-log"
SLICE = 0.002
"""Seconds the exporter runs between two looks at its store while it reads the backlog."""


def period(serve: ServeProcess) -> tuple[float, float]:
    """The SLO's period window: (events, bad events)."""
    api = httpx.get(f"{serve.base}/api/v1/slo", timeout=5).json()
    (entry,) = [s for s in api["slos"] if s["slo"] == "manifest-pulls"]
    window = entry["windows"][-1]
    assert window["window"] == entry["period"]
    return window["events"], window["bad_events"]


def pull(client: httpx.Client, url: str, start: int, stop: int) -> None:
    for i in range(start, stop):
        tag = "missing" if i % 10 == 9 else "v1"
        client.get(f"{url}/v2/team/app/manifests/{tag}", headers=ACCEPT)


def pull_in_parallel(url: str, start: int, stop: int, clients: int = 8) -> None:
    def run(first: int) -> None:
        with httpx.Client(trust_env=False, timeout=10) as client:
            for i in range(first, stop, clients):
                pull(client, url, i, i + 1)

    threads = [threading.Thread(target=run, args=(start + k,)) for k in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)


def kill_when(serve: ServeProcess, events: int) -> float:
    """SIGKILL the exporter once it has counted ``events``; return what it had."""
    deadline = time.monotonic() + 60
    while (seen := period(serve)[0]) < events:
        assert time.monotonic() < deadline, f"the exporter stopped reading at {seen}"
        time.sleep(0.02)
    serve.kill()
    return seen


def wait_for_the_log(serve: ServeProcess) -> None:
    """Wait until the exporter has the log open (its first scan found the end)."""
    deadline = time.monotonic() + 30
    while True:
        text = httpx.get(f"{serve.base}/metrics", timeout=5).text
        files = [sample.value for family in text_string_to_metric_families(text)
                 for sample in family.samples
                 if sample.name == "registry_slo_ingest_files"
                 and sample.labels.get("source") == SOURCE]
        if files == [1]:
            return
        assert time.monotonic() < deadline, f"the exporter has not opened the log: {files}"
        time.sleep(0.05)


def committed_offset(state: Path, log: Path) -> int:
    """The position in ``log`` committed in the exporter's SLO store: the source's
    cursor, a checkpoint (``registry_slo.ingest.checkpoint``) kept in the ``cursors``
    table and committed with the counts of the lines before it."""
    uri = f"file:{state / STORE_FILE}?mode=ro"
    with contextlib.closing(sqlite3.connect(uri, uri=True, timeout=1)) as db:
        row = db.execute("SELECT value FROM cursors WHERE name = ?",
                         (f"ingest/{SOURCE}",)).fetchone()
    if row is None:
        return 0
    files = json.loads(row[0])["files"].values()
    return max((int(f["offset"]) for f in files if f["path"] == str(log)), default=0)


def kill_inside(serve: ServeProcess, state: Path, log: Path, start: int) -> int:
    """Run the exporter (started with ``wait=False``) in slices of :data:`SLICE`, frozen
    in between, and SIGKILL it, frozen, at the first committed position past ``start``.

    Returns:
        The committed position when it was killed.
    """
    deadline = time.monotonic() + 120
    while True:
        time.sleep(SLICE)
        serve.pause()
        try:
            committed = committed_offset(state, log)
        except sqlite3.OperationalError:  # frozen in the middle of a commit: next slice
            committed = start
        if committed > start or time.monotonic() > deadline:
            serve.kill()
            return committed
        serve.resume()


def test_crash_and_restart_count_every_request_exactly_once(tmp_path: Path) -> None:
    require_binary("docker-registry")
    with LocalRegistry(log_path=tmp_path / "registry.log") as registry, \
            httpx.Client(trust_env=False, timeout=5) as client:
        push_image(client, registry.url, "team/app", "v1")
        config: dict[str, Any] = {
            "listen": f"127.0.0.1:{free_port()}",
            "log_format": "json",
            "state_dir": str(tmp_path / "state"),
            "regions": [{"name": "local", "url": registry.url,
                         "probe": {"enabled": ["auth"], "interval": "30s"}}],
            "ingest": {
                "checkpoint_dir": str(tmp_path / "checkpoints"),
                "poll_interval": "50ms",
                "checkpoint_interval": "50ms",  # commits often: a kill lands between two
                "logs": [{"name": "registry-log", "region": "local", "format": "distribution",
                          "paths": [str(registry.log_path)], "read_from": "end"}],
            },
            "slos": [{"name": "manifest-pulls", "objective": 99,
                      "sli": {"kind": "traffic_success", "operations": ["pull_manifest"],
                              "errors": ["not_found"]}}],
        }
        path = tmp_path / "regions.yaml"
        path.write_text(yaml.safe_dump(config))
        log = tmp_path / "exporter.log"

        serve = ServeProcess(path, log)
        wait_for_the_log(serve)
        # Live traffic: kill the exporter while lines are being written and read.
        killed = threading.Event()

        def live() -> None:
            pull(client, registry.url, 0, 600)
            killed.wait(timeout=120)  # the rest once the exporter is dead
            pull(client, registry.url, 600, 1000)

        pulling = threading.Thread(target=live)
        pulling.start()
        try:
            assert kill_when(serve, 300) < 1000
        finally:
            killed.set()
        pulling.join(timeout=120)
        serve = ServeProcess(path, log)  # after a crash
        pull(client, registry.url, 1000, LIVE)
        assert wait_for(serve, LIVE)[0] == LIVE
        serve.stop()

        # A backlog: written while the exporter is stopped, read in chunks, killed
        # in its middle.
        state = Path(config["state_dir"])
        start = committed_offset(state, registry.log_path)
        pull_in_parallel(registry.url, LIVE, REQUESTS)
        end = registry.log_path.stat().st_size
        serve = ServeProcess(path, log, wait=False)  # after a clean stop
        assert start < kill_inside(serve, state, registry.log_path, start) < end
        serve = ServeProcess(path, log)  # after a crash
        assert wait_for(serve, REQUESTS)[0] == REQUESTS
        serve.stop()
        serve = ServeProcess(path, log)  # after a clean stop
        try:
            time.sleep(1.5)  # nothing more arrives
            events, bad = period(serve)
        finally:
            serve.stop()
    assert (events, bad) == (REQUESTS, REQUESTS // 10)
    # The position lives in the SLO store, not in a checkpoint file.
    assert not (tmp_path / "checkpoints" / "registry-log.json").exists()


def wait_for(serve: ServeProcess, events: int) -> tuple[float, float]:
    deadline = time.monotonic() + 60
    while True:
        seen = period(serve)
        if seen[0] >= events or time.monotonic() > deadline:
            return seen
        time.sleep(0.1)


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
