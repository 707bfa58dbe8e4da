"""Against the real registry (Debian's docker-registry, distribution 2.8): traffic made
with skopeo (push, pull, wrong password, delete) and the exporter's own probe client;
the counts read from its JSON log agree exactly with the traffic made and with its
access log, and the running exporter follows the log through copytruncate and restarts."""

from __future__ import annotations

import asyncio
import re
import shutil
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml
from conftest import require_binary
from harness import PROBER
from harness.serve import ServeProcess
from prometheus_client.parser import text_string_to_metric_families

from registry_slo.devenv import HtpasswdAuth, LocalRegistry, free_port
from registry_slo.ingest import replay
from registry_slo.oci import USER_AGENT, Credentials, RegistryClient

from .images import Skopeo, make_image_dir

CREDS = f"{PROBER.username}:{PROBER.password}"
WRONG = f"{PROBER.username}:not-the-password"
# The access log (stdout, gorilla's combined format), read with a regex of the test's own.
ACCESS = re.compile(r'"(?P<method>[A-Z]+) \S+ HTTP/[\d.]+" (?P<status>\d{3}) \S+ "[^"]*" '
                    r'"(?P<agent>[^"]*)"')


@pytest.fixture
def htpasswd_registry_with_logs() -> Iterator[LocalRegistry]:
    require_binary("docker-registry")
    with LocalRegistry(auth=HtpasswdAuth({PROBER.username: PROBER.password})) as reg:
        yield reg


def settle(reg: LocalRegistry) -> None:
    """Wait until the registry's log stops growing (it writes asynchronously)."""
    size = -1
    while size != reg.log_path.stat().st_size:
        size = reg.log_path.stat().st_size
        time.sleep(0.2)


async def probe_traffic(url: str) -> None:
    client = RegistryClient(url, credentials=Credentials(PROBER.username, PROBER.password))
    try:
        await client.ping()
    finally:
        await client.aclose()


def make_traffic(reg: LocalRegistry, skopeo: Skopeo, work: Path, tag: str) -> dict[str, int]:
    """Two pushes, one pull, two wrong passwords, one delete, one probe ping."""
    for repo in ("team/app", "team/web"):
        image = make_image_dir(work / f"{repo.replace('/', '-')}-{tag}", content=tag.encode())
        skopeo.push(image, f"{reg.host}/{repo}:{tag}", CREDS)
    skopeo.pull(f"{reg.host}/team/app:{tag}", work / f"out-{tag}", CREDS)
    for _ in range(2):
        assert skopeo.inspect(f"{reg.host}/team/app:{tag}", WRONG).returncode != 0
    skopeo.delete(f"{reg.host}/team/web:{tag}", CREDS)
    asyncio.run(probe_traffic(reg.url))
    return {"pushes": 2, "pulled_blobs": 2, "wrong_passwords": 2, "deletes": 1}


def test_counts_from_the_log_agree_with_the_traffic(
    htpasswd_registry_with_logs: LocalRegistry, skopeo: Skopeo, tmp_path: Path
) -> None:
    reg = htpasswd_registry_with_logs
    made = make_traffic(reg, skopeo, tmp_path, "v1")
    settle(reg)
    data = replay([reg.log_path], "distribution").to_json()
    requests, failures = data["requests"]["replay"], data["failures"]["replay"]

    # What we did, as the log tells it.
    assert requests["push_manifest"] == {"201": made["pushes"]}
    assert requests["pull_blob"] == {"200": made["pulled_blobs"]}
    assert sum(f.get("auth", 0) for f in failures.values()) == made["wrong_passwords"]
    assert requests["delete"] == {"202": made["deletes"]}
    assert data["rejected"] == {}
    assert data["lines"] == (data["observations"] + sum(data["ignored"].values()))

    # Every request of the access log is accounted for, one way or another.
    access: Counter[str] = Counter()
    probe_lines = 0
    for line in reg.access_log_path.read_text().splitlines():
        match = ACCESS.search(line)
        assert match is not None, line
        if match["agent"].startswith(USER_AGENT.split("/")[0] + "/"):
            probe_lines += 1
        else:
            access[f"{match['method']} {match['status']}"] += 1
    from_log = Counter(data["requests_by_method_status"])
    # 401s: the JSON log tells the anonymous challenge (ignored) from a failed login.
    from_log["GET 401"] += data["ignored"]["auth_challenge"]
    assert from_log == access
    assert data["ignored"]["probe_traffic"] == probe_lines == 2


def metrics_of(base: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    out = {}
    text = httpx.get(f"{base}/metrics", timeout=5).text
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


def total(samples: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str,
          **labels: str) -> float:
    return sum(v for (n, lab), v in samples.items()
               if n == name and set(labels.items()) <= set(lab))


def wait_lines(exporter: ServeProcess, lines: int
               ) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """The exporter's metrics once it has read ``lines`` lines (or after 20 s)."""
    deadline = time.monotonic() + 20
    while True:
        samples = metrics_of(exporter.base)
        seen = total(samples, "registry_slo_ingest_lines_total", source="registry-log")
        if seen == lines or time.monotonic() > deadline:
            return samples
        time.sleep(0.2)


def lines_in(*paths: Path) -> int:
    return sum(len(p.read_bytes().splitlines()) for p in paths)


def test_exporter_follows_the_log_through_copytruncate_and_restart(
    htpasswd_registry_with_logs: LocalRegistry, skopeo: Skopeo, tmp_path: Path
) -> None:
    reg = htpasswd_registry_with_logs
    config = tmp_path / "exporter.yaml"
    config.write_text(yaml.safe_dump({
        "listen": f"127.0.0.1:{free_port()}",
        "log_format": "json",
        "ingest": {
            "checkpoint_dir": str(tmp_path / "checkpoints"),
            "poll_interval": "100ms",
            "logs": [{"name": "registry-log", "region": "local", "format": "distribution",
                      "paths": [f"{reg.log_path}*"], "read_from": "beginning"}],
        },
    }))
    exporter = ServeProcess(config, tmp_path / "exporter.log")
    try:
        make_traffic(reg, skopeo, tmp_path, "v1")
        settle(reg)
        # logrotate's copytruncate: the registry keeps writing to its stderr file.
        rotated = reg.log_path.with_name(reg.log_path.name + ".1")
        shutil.copyfile(reg.log_path, rotated)
        reg.log_path.write_bytes(b"")
        make_traffic(reg, skopeo, tmp_path, "v2")
        settle(reg)
        samples = wait_lines(exporter, lines_in(rotated, reg.log_path))
    finally:
        exporter.stop()
    expected = replay([rotated, reg.log_path], "distribution", region="local",
                      source="registry-log").to_json()
    assert total(samples, "registry_slo_ingest_lines_total") == expected["lines"]
    for operation, codes in expected["requests"]["local"].items():
        for code, count in codes.items():
            assert total(samples, "registry_slo_registry_requests_total", region="local",
                         operation=operation, code=code) == count, (operation, code)
    assert total(samples, "registry_slo_registry_request_failures_total", reason="auth") == 4
    assert total(samples, "registry_slo_ingest_file_events_total", event="copy_followed") == 1
    assert total(samples, "registry_slo_ingest_rejected_total") == 0

    # Stopped: more traffic; a new exporter reads exactly the lines written meanwhile.
    before = lines_in(rotated, reg.log_path)
    make_traffic(reg, skopeo, tmp_path, "v3")
    settle(reg)
    exporter = ServeProcess(config, tmp_path / "exporter.log")
    try:
        samples = wait_lines(exporter, lines_in(rotated, reg.log_path) - before)
        time.sleep(0.5)  # and nothing more arrives
        samples = metrics_of(exporter.base)
    finally:
        exporter.stop()
    new_lines = lines_in(rotated, reg.log_path) - before
    assert total(samples, "registry_slo_ingest_lines_total") == new_lines
    assert total(samples, "registry_slo_registry_requests_total", operation="push_manifest") == 2


def test_replay_and_mtail_agree_on_a_small_benchmark(tmp_path: Path) -> None:
    """The benchmark's premise, in miniature: both tools derive the same counters."""
    require_binary("mtail")
    from bench.ingest_bench import bench

    result = bench(5000, tmp_path, seed=3)
    assert result["counters_agree"]
    assert result["requests"] > 2000
    assert set(result["requests_by_method_status"]) >= {"GET 200", "GET 401", "HEAD 404"}


def test_notifications_from_the_real_registry_count_each_operation_once(
    skopeo: Skopeo, tmp_path: Path
) -> None:
    """The registry notifies the exporter, which starts only after the traffic: the
    registry's retries deliver every event, none counted twice; the counts agree with
    the traffic and with the registry's own log; a re-pushed tag is an overwrite."""
    require_binary("docker-registry")
    listen_port = free_port()
    token = "webhook-token-1"
    (tmp_path / "token").write_text(token + "\n")
    notifications = {"endpoints": [{
        "name": "exporter", "url": f"http://127.0.0.1:{listen_port}/notifications/events",
        "headers": {"Authorization": [f"Bearer {token}"]},
        "timeout": "500ms", "threshold": 1, "backoff": "300ms",
    }]}
    auth = HtpasswdAuth({PROBER.username: PROBER.password})
    with LocalRegistry(auth=auth, extra_config={"notifications": notifications}) as reg:
        make_traffic(reg, skopeo, tmp_path, "v1")
        retag = make_image_dir(tmp_path / "retag", content=b"another build")
        skopeo.push(retag, f"{reg.host}/team/app:v1", CREDS)  # the same tag, a new digest
        settle(reg)
        config = tmp_path / "exporter.yaml"
        config.write_text(yaml.safe_dump({
            "listen": f"127.0.0.1:{free_port()}",
            "log_format": "json",
            "ingest": {
                "checkpoint_dir": str(tmp_path / "checkpoints"),
                "poll_interval": "100ms",
                "logs": [{"name": "registry-log", "region": "local", "format": "distribution",
                          "paths": [str(reg.log_path)], "read_from": "beginning"}],
                "notifications": {
                    "listen": f"127.0.0.1:{listen_port}",
                    "bearer_token_file": str(tmp_path / "token"),
                    "endpoints": [{"name": "events", "region": "local",
                                   "format": "distribution"}],
                },
            },
        }))
        exporter = ServeProcess(config, tmp_path / "exporter.log")
        try:
            deadline = time.monotonic() + 30
            while True:
                samples = metrics_of(exporter.base)
                pushes = total(samples, "registry_slo_registry_requests_total",
                               source="events", operation="push_manifest")
                if pushes >= 3 or time.monotonic() > deadline:
                    break
                time.sleep(0.3)
            time.sleep(1.5)  # let any resend arrive
            samples = metrics_of(exporter.base)
        finally:
            exporter.stop()

    def count(source: str, operation: str) -> float:
        return total(samples, "registry_slo_registry_requests_total", source=source,
                     operation=operation)

    # what we did: 3 manifest pushes, 1 pull (2 blobs), 1 delete
    assert count("events", "push_manifest") == 3
    assert count("events", "pull_blob") == 2
    assert count("events", "delete") == 1
    # the log says the same about successful pushes, pulls, blob checks and deletes
    for operation in ("push_manifest", "pull_manifest", "pull_blob", "check_blob", "delete"):
        ok_in_log = total(samples, "registry_slo_registry_requests_total",
                          source="registry-log", operation=operation) - total(
            samples, "registry_slo_registry_request_failures_total", source="registry-log",
            operation=operation)
        assert ok_in_log == count("events", operation), operation
    assert total(samples, "registry_slo_registry_tag_overwrites_total") == 1
    assert total(samples, "registry_slo_ingest_ignored_total", source="events",
                 reason="duplicate") == 0
    assert total(samples, "registry_slo_ingest_ignored_total", source="events",
                 reason="probe_traffic") == 0  # the probe only pinged: no event
    assert total(samples, "registry_slo_ingest_notification_requests_total", code="200") >= 1
