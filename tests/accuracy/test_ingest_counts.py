"""Ingest against a known request mix.

A client sends a real registry a mix whose every request is known (operation, status,
body bytes each way) and timed from the client's side. The exporter, tailing the
registry's own log, must report exactly those counts per operation and status, exactly
those response bytes (the log says nothing of request bodies), and a duration sum per
operation that the registry can have spent: more than zero and no more than the
clients' round trips.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections import Counter, defaultdict
from pathlib import Path

import httpx
import yaml
from conftest import require_binary
from harness.serve import ServeProcess
from prometheus_client.parser import text_string_to_metric_families

from registry_slo.devenv import LocalRegistry, free_port

from ._record import record

REPO = "accuracy/app"


class Truth:
    """What was sent, per (operation, status), from the client's side."""

    def __init__(self) -> None:
        self.requests: Counter[tuple[str, str]] = Counter()
        self.egress: Counter[str] = Counter()  # response body bytes, per operation
        self.round_trips: defaultdict[str, float] = defaultdict(float)

    def send(self, client: httpx.Client, operation: str, method: str, url: str,
             expect: int, **kwargs: object) -> httpx.Response:
        started = time.perf_counter()
        answer = client.request(method, url, **kwargs)  # type: ignore[arg-type]
        self.round_trips[operation] += time.perf_counter() - started
        assert answer.status_code == expect, (method, url, answer.status_code, answer.text)
        self.requests[(operation, str(expect))] += 1
        if method != "HEAD":
            self.egress[operation] += len(answer.content)
        return answer


def settle(log: Path) -> None:
    """Wait until the registry's log stops growing (it writes asynchronously)."""
    size = -1
    while size != log.stat().st_size:
        size = log.stat().st_size
        time.sleep(0.2)


def make_mix(base: str, truth: Truth) -> None:
    blobs = [bytes([i]) * (1000 * (i + 1)) for i in range(4)]  # 1 kB .. 4 kB
    with httpx.Client(base_url=base, timeout=10) as client:
        truth.send(client, "auth", "GET", "/v2/", 200)
        digests = []
        for blob in blobs:
            digest = "sha256:" + hashlib.sha256(blob).hexdigest()
            digests.append(digest)
            truth.send(client, "check_blob", "HEAD", f"/v2/{REPO}/blobs/{digest}", 404)
            started = truth.send(client, "push_blob", "POST", f"/v2/{REPO}/blobs/uploads/",
                                 202)
            location = started.headers["Location"]
            truth.send(client, "push_blob", "PUT", f"{location}&digest={digest}", 201,
                       content=blob, headers={"Content-Type": "application/octet-stream"})
        for _ in range(3):
            for digest in digests:
                truth.send(client, "pull_blob", "GET", f"/v2/{REPO}/blobs/{digest}", 200)
        missing = "sha256:" + "0" * 64
        for _ in range(2):
            truth.send(client, "pull_blob", "GET", f"/v2/{REPO}/blobs/{missing}", 404)
        truth.send(client, "pull_manifest", "GET", f"/v2/{REPO}/manifests/nope", 404)
        truth.send(client, "tags_list", "GET", f"/v2/{REPO}/tags/list", 404)


def metrics(base: str) -> list[tuple[str, dict[str, str], float]]:
    text = httpx.get(f"{base}/metrics", timeout=5).text
    return [(s.name, s.labels, s.value) for f in text_string_to_metric_families(text)
            for s in f.samples]


def test_the_log_gives_exactly_the_request_mix(tmp_path: Path) -> None:
    require_binary("docker-registry")
    with LocalRegistry() as registry:
        config = tmp_path / "exporter.yaml"
        config.write_text(yaml.safe_dump({
            "listen": f"127.0.0.1:{free_port()}",
            "log_format": "json",
            "ingest": {
                "checkpoint_dir": str(tmp_path / "checkpoints"),
                "poll_interval": "100ms",
                "logs": [{"name": "log", "region": "local", "format": "distribution",
                          "paths": [str(registry.log_path)], "read_from": "beginning"}],
            },
        }))
        truth = Truth()
        settle(registry.log_path)
        # The harness's readiness checks are in the log too: GET /v2/, counted from the
        # raw JSON (not with the parser under test).
        for line in registry.log_path.read_text().splitlines():
            entry = json.loads(line) if line.startswith("{") else {}
            if entry.get("http.request.uri") == "/v2/" and "http.response.status" in entry:
                truth.requests[("auth", str(entry["http.response.status"]))] += 1
                truth.egress["auth"] += int(entry["http.response.written"])
                truth.round_trips["auth"] += float("inf")  # not timed by this test
        make_mix(registry.url, truth)
        exporter = ServeProcess(config, tmp_path / "exporter.log")
        try:
            expected = sum(truth.requests.values())
            deadline = time.monotonic() + 30
            while True:
                samples = metrics(exporter.base)
                seen = sum(v for n, labels, v in samples
                           if n == "registry_slo_registry_requests_total")
                if seen >= expected or time.monotonic() > deadline:
                    break
                time.sleep(0.2)
            time.sleep(0.5)  # and nothing more arrives
            samples = metrics(exporter.base)
        finally:
            exporter.stop()
    requests = Counter({(labels["operation"], labels["code"]): v for n, labels, v in samples
                        if n == "registry_slo_registry_requests_total" and v})
    assert requests == Counter({k: float(v) for k, v in truth.requests.items()})
    egress = {labels["operation"]: v for n, labels, v in samples
              if n == "registry_slo_registry_bytes_total" and labels["direction"] == "egress"
              and v}
    assert egress == {op: float(b) for op, b in truth.egress.items() if b}
    sums = {labels["operation"]: v for n, labels, v in samples
            if n == "registry_slo_registry_request_duration_seconds_sum"}
    counts = {labels["operation"]: v for n, labels, v in samples
              if n == "registry_slo_registry_request_duration_seconds_count"}
    for operation, round_trip in truth.round_trips.items():
        total = sum(c for (op, _), c in truth.requests.items() if op == operation)
        assert counts[operation] == total, operation
        assert 0 < sums[operation] <= round_trip, (operation, sums[operation], round_trip)
    record("ingest", requests=sum(truth.requests.values()), exact_counts=True,
           egress_bytes=sum(truth.egress.values()),
           duration_share_of_round_trip={op: round(sums[op] / rt, 3)
                                         for op, rt in truth.round_trips.items()
                                         if rt != float("inf")})
