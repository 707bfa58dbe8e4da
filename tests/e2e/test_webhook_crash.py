"""No webhook event lost or counted twice by the SLI engine across a crash (SIGKILL).

A real registry (Debian's docker-registry) sends its notifications to two endpoints: the
exporter's receiver (``registry-slo serve``, counting a traffic SLO over them) and a
recorder in this test that keeps every envelope (a sink, answering 200). Images are
pushed and pulled; the exporter is frozen (SIGSTOP) once its SLO store holds committed
events, more images are pushed while it is frozen (so events are certainly waiting in
the registry's queue, and one may be half-handled), and it is killed with SIGKILL,
still frozen. More images are pushed while it is down; then it is started again on the
same state directory, and the registry, which resends whatever got no 2xx answer,
delivers the rest.

At the end, the event ids committed in the exporter's store are exactly the ids the
recorder received, and the SLO's period window counts exactly the events among them that
the SLO counts: an event acknowledged before the crash was already committed, and one
resent after it is counted once.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from conftest import require_binary
from harness import push_image
from harness.serve import ServeProcess

from registry_slo.devenv import LocalRegistry, free_port
from registry_slo.ingest.notify import distribution_records
from registry_slo.observation import Observation
from registry_slo.sli.store import STORE_FILE
from registry_slo.vocabulary import OPERATIONS

SOURCE = "events"
DEADLINE = 90.0


class Recorder:
    """Every envelope a registry posts, answered 200 (the reference of what was sent)."""

    def __init__(self) -> None:
        self.bodies: list[Any] = []
        self._lock = threading.Lock()
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", "0"))
                body = json.loads(self.rfile.read(length))
                with recorder._lock:
                    recorder.bodies.append(body)
                self.send_response(200)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def ids(self) -> set[str]:
        with self._lock:
            return {e["id"] for body in self.bodies for e in body["events"]}

    def counted(self) -> int:
        """The events the SLO counts: those the exporter's reader makes observations of
        (the reader's own mapping; its correctness is tested elsewhere)."""
        with self._lock:
            events = {e["id"]: e for body in self.bodies for e in body["events"]}
        records = distribution_records({"events": list(events.values())}, "r", SOURCE)
        return sum(isinstance(result, Observation) for _, result in records)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    recorded = Recorder()
    yield recorded
    recorded.close()


def _committed_ids(state: Path) -> set[str]:
    path = state / STORE_FILE
    if not path.exists():
        return set()
    db = sqlite3.connect(path, timeout=10)
    try:
        return {str(row[0]) for row in db.execute(
            "SELECT id FROM seen WHERE source = ?", (f"notify/{SOURCE}",))}
    except sqlite3.OperationalError:  # the schema is not there yet
        return set()
    finally:
        db.close()


def _period_events(serve: ServeProcess) -> float:
    api = httpx.get(f"{serve.base}/api/v1/slo", timeout=5).json()
    (entry,) = [s for s in api["slos"] if s["slo"] == "registry-events"]
    window = entry["windows"][-1]
    assert window["window"] == entry["period"]
    return float(window["events"])


def _traffic(url: str, first: int, count: int) -> None:
    with httpx.Client(trust_env=False, timeout=10) as client:
        for i in range(first, first + count):
            image = push_image(client, url, f"team/app{i % 3}", f"v{i}",
                               layer=f"layer {i}\n".encode())
            client.get(f"{url}/v2/team/app{i % 3}/blobs/{image.layer_digest}")


def test_no_webhook_event_is_lost_or_counted_twice_across_a_kill(
    tmp_path: Path, recorder: Recorder
) -> None:
    require_binary("docker-registry")
    port = free_port()
    delivery = {"timeout": "1s", "threshold": 1, "backoff": "200ms"}
    notifications = {"endpoints": [
        {"name": "exporter", "url": f"http://127.0.0.1:{port}/notifications/{SOURCE}",
         **delivery},
        {"name": "recorder", "url": recorder.url, **delivery},
    ]}
    with LocalRegistry(extra_config={"notifications": notifications}) as registry:
        state = tmp_path / "state"
        config = tmp_path / "regions.yaml"
        config.write_text(yaml.safe_dump({
            "listen": f"127.0.0.1:{free_port()}",
            "log_format": "json",
            "state_dir": str(state),
            "regions": [{"name": "r", "url": registry.url,
                         "probe": {"enabled": ["auth"], "interval": "1m"}}],
            "ingest": {"notifications": {
                "listen": f"127.0.0.1:{port}",
                "endpoints": [{"name": SOURCE, "region": "r", "format": "distribution"}]}},
            "slos": [{"name": "registry-events", "objective": 99,
                      "sli": {"kind": "traffic_success", "operations": list(OPERATIONS),
                              "sources": [SOURCE]}}],
        }))
        log = tmp_path / "exporter.log"
        serve = ServeProcess(config, log)
        _traffic(registry.url, 0, 10)
        deadline = time.monotonic() + DEADLINE
        while not _committed_ids(state):
            assert time.monotonic() < deadline, serve.tail()
            time.sleep(0.05)
        serve.pause()
        before_kill = _committed_ids(state)
        _traffic(registry.url, 10, 10)  # queued in the registry for a frozen receiver
        serve.kill()
        assert before_kill, "the kill comes after some events were committed"
        _traffic(registry.url, 20, 10)  # and while it is down
        serve = ServeProcess(config, log)
        try:
            deadline = time.monotonic() + DEADLINE
            while True:
                sent = recorder.ids()
                committed = _committed_ids(state)
                if committed == sent and sent and _period_events(serve) == recorder.counted():
                    break
                assert time.monotonic() < deadline, (
                    f"{len(sent)} events sent, {len(committed)} committed, "
                    f"{len(committed - sent)} unknown\n{serve.tail()}")
                time.sleep(0.2)
            assert len(before_kill) < len(sent), "events were left to deliver at the kill"
            time.sleep(2.0)  # a resend after the end would show now
            assert _committed_ids(state) == recorder.ids()
            assert _period_events(serve) == recorder.counted() > 0
        finally:
            serve.stop()
