"""The ``kubernetes-events`` format: the kubelet's image events as kubectl, the API's
watch, eventrouter and kubernetes-event-exporter write them (fixtures/kubernetes/), the
rule that counts one pull attempt once, the registry filter, bad input, and one source
followed end to end by the exporter's ingest service."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from pathlib import Path

import pytest
from pydantic import ValidationError

from registry_slo.config import LogSourceConfig
from registry_slo.ingest import IngestConfig, IngestService, replay
from registry_slo.ingest.formats import Ignored, KubernetesEventsParser, Rejected, make_parser
from registry_slo.ingest.formats.kubernetes import parse_image, pull_failure
from registry_slo.observation import Observation
from registry_slo.oci import Reason
from registry_slo.telemetry.metrics import ExporterMetrics

from .conftest import FIXTURES

K8S = FIXTURES / "kubernetes"
REG = "registry.example.com:5000"
DIGEST = "sha256:" + "3f4a9c2e1b7d8a6f" * 4
Result = Observation | Ignored | str


def parse_all(path: Path, registries: list[str] | None = None) -> list[Result]:
    parser = KubernetesEventsParser("eu", "k8s", [REG] if registries is None else registries)
    out: list[Result] = []
    for line in path.read_bytes().splitlines():
        try:
            out.append(parser.parse(line))
        except Rejected as exc:
            out.append(exc.reason)
    return out


def summary(results: list[Result]) -> Counter[tuple[object, ...]]:
    """(success, reason, repository, tag, digest, seconds, bytes, timed) per pull."""
    counts: Counter[tuple[object, ...]] = Counter()
    for r in results:
        if isinstance(r, Observation):
            assert (r.region, r.source, r.operation) == ("eu", "k8s", "pull_manifest")
            counts[(r.success, r.reason, r.repository, r.tag, r.digest,
                    round(r.duration_seconds, 9), r.bytes_received, r.timed)] += 1
        elif isinstance(r, Ignored):
            counts[("ignored", r.reason)] += 1
        else:
            counts[("rejected", r)] += 1
    return counts


WEB = (True, None, "team/web", "1.4.2", None, 1.204, 48213377, True)
API = (True, None, "team/api", None, DIGEST, 123.456, 310555123, True)
NOT_FOUND = (False, Reason.NOT_FOUND, "team/web", "1.4.3", None, 0.0, 0, False)


def failed(reason: Reason, repository: str = "team/web", tag: str = "1.4.2") -> tuple[object, ...]:
    return (False, reason, repository, tag, None, 0.0, 0, False)


def test_kubectl_watch_of_a_current_kubelet() -> None:
    """``kubectl get events -A -w --watch-only -o json | jq -c .``, kubelet 1.30 on
    containerd: pods that pull, one that never finds its tag, registry failures."""
    assert summary(parse_all(K8S / "kubectl-core-v1.jsonl")) == Counter({
        WEB: 1,
        API: 1,  # pulled by digest: 2m3.456s without the wait (2m9.001s with it)
        NOT_FOUND: 2,  # two attempts: their ErrImagePull, BackOff, ImagePullBackOff are not
        failed(Reason.AUTH, "team/api", "3.1"): 1,
        failed(Reason.DENIED, "team/secret", "1.0"): 1,
        failed(Reason.TIMEOUT): 1,
        failed(Reason.CONNECT): 1,
        failed(Reason.RATE_LIMITED): 1,
        failed(Reason.SERVER_ERROR): 1,
        failed(Reason.TLS): 1,  # "(combined from similar events): Failed to pull ..."
        ("ignored", "already_present"): 1,
        ("ignored", "other_registry"): 2,  # nginx:1.27 (Docker Hub), ghcr.io/acme/sidecar
        # Scheduled, Pulling x5, Created, Started, Killing, SuccessfulCreate, Error: ... x6,
        # BackOff x2, ErrImageNeverPull, InspectFailed
        ("ignored", "not_an_operation"): 20,
    })


def test_one_pull_attempt_is_one_observation() -> None:
    """A failed attempt is one ``Failed to pull image`` event; the ``Error: ErrImagePull``
    and ``Error: ImagePullBackOff`` events and the ``BackOff`` that follow it, and the
    ``Pulling`` before it, are the same attempt or none; a watch's update with a higher
    ``count`` is the next occurrence."""
    lines = [line for line in (K8S / "kubectl-core-v1.jsonl").read_bytes().splitlines()
             if b"web-6b5a4c3d2-r7t9w" in line]
    assert len(lines) == 10
    results = [KubernetesEventsParser("eu", "k8s", [REG]).parse(line) for line in lines]
    pulls = [r for r in results if isinstance(r, Observation)]
    assert [(p.success, p.reason, p.time) for p in pulls] == [
        (False, Reason.NOT_FOUND, 1795766641.0),  # 08:04:01, count 1
        (False, Reason.NOT_FOUND, 1795766657.0),  # 08:04:17, count 2: lastTimestamp
    ]
    assert pulls[0].detail is not None and pulls[0].detail.endswith(
        "registry.example.com:5000/team/web:1.4.3: not found")


def test_every_kubelet_message_version() -> None:
    """Older kubelets: no size (milliseconds, or nanoseconds before the figures were
    truncated), one figure with the wait in it, no duration at all (untimed); dockershim's
    and CRI-O's errors."""
    assert summary(parse_all(K8S / "kubelet-older.jsonl")) == Counter({
        (True, None, "team/web", "1.3.0", None, 1.315, 0, True): 1,
        (True, None, "team/proxy", "1.20.2", None, 32.341313682, 0, True): 1,
        (True, None, "team/web", "1.2.0", None, 7.46029133, 0, True): 1,
        (True, None, "team/web", "1.1.0", None, 0.000523917, 0, True): 1,  # 523.917µs
        (True, None, "team/web", "1.0.0", None, 0.0, 0, False): 1,
        failed(Reason.DENIED, "team/old", "0.9"): 1,  # "pull access denied ... denied: ..."
        failed(Reason.NOT_FOUND, "team/web", "9.9"): 1,  # CRI-O: "manifest unknown: ..."
        ("ignored", "already_present"): 1,
        ("ignored", "other_registry"): 1,  # "busybox": docker.io/library/busybox:latest
    })


def test_events_k8s_io_v1_shape() -> None:
    """``note``, ``regarding``, ``deprecatedLastTimestamp``; a series' time is its
    ``lastObservedTime``."""
    results = parse_all(K8S / "events-k8s-io-v1.jsonl")
    assert summary(results) == Counter({
        WEB: 1, NOT_FOUND: 2, API: 1,
        ("ignored", "already_present"): 1,
        ("ignored", "not_an_operation"): 2,
    })
    series = results[-1]
    assert isinstance(series, Observation)
    assert series.time == pytest.approx(1795769400.654321)  # 08:50:00.654321, not eventTime


def test_eventrouter_envelopes_and_its_glog_sink() -> None:
    """``{"verb": "ADDED"|"UPDATED", "event": …}`` from the stdout sink and behind the
    glog sink's header; a resync (``UPDATED`` with an unchanged event) is a duplicate,
    eventrouter's own glog messages are not operations."""
    assert summary(parse_all(K8S / "eventrouter.log")) == Counter({
        WEB: 1, NOT_FOUND: 2, API: 1,
        ("ignored", "duplicate"): 1,
        ("ignored", "already_present"): 1,
        ("ignored", "not_an_operation"): 2,  # Error: ErrImagePull, "Starting shared ..."
    })


def test_kubernetes_event_exporter_and_the_watch_stream() -> None:
    assert summary(parse_all(K8S / "event-exporter.jsonl")) == Counter({
        WEB: 1, failed(Reason.AUTH, "team/api", "3.1"): 1,
        ("ignored", "not_an_operation"): 2,
    })
    # kubectl get --raw '/api/v1/events?watch=1': DELETED is the event's TTL, BOOKMARK none
    assert summary(parse_all(K8S / "watch-stream.jsonl")) == Counter({
        WEB: 1, NOT_FOUND: 1, ("ignored", "not_an_operation"): 2,
    })


def test_bad_lines_are_rejected_by_reason() -> None:
    assert Counter(parse_all(K8S / "malformed.jsonl")) == Counter({
        "malformed_json": 4, "missing_field": 3, "bad_value": 9,
    })


def test_pretty_printed_objects_are_rejected_loudly_not_half_read() -> None:
    """``kubectl get events -w -o json`` without ``jq -c`` writes an object over many
    lines: every line is rejected (logged and counted), none is taken for an event."""
    results = parse_all(K8S / "kubectl-pretty.json")
    assert len(results) > 20 and set(results) == {"malformed_json"}


def test_registries_are_hosts_as_image_references_name_them() -> None:
    lines = (K8S / "kubectl-core-v1.jsonl").read_bytes().splitlines()
    hub = summary(parse_all(K8S / "kubectl-core-v1.jsonl", ["index.docker.io"]))
    assert hub[(True, None, "library/nginx", "1.27", None, 3.812, 72188133, True)] == 1
    assert hub[("ignored", "other_registry")] == 13
    everything = make_parser("kubernetes-events", "eu", "k8s")  # replay without a config
    pulls = [everything.parse(line) for line in lines]
    assert sum(isinstance(p, Observation) for p in pulls) == 13


@pytest.mark.parametrize(("reference", "expected"), [
    ("nginx", ("docker.io", "library/nginx", "latest", None)),
    ("nginx:1.27", ("docker.io", "library/nginx", "1.27", None)),
    ("team/app", ("docker.io", "team/app", "latest", None)),
    ("docker.io/nginx", ("docker.io", "library/nginx", "latest", None)),
    ("index.docker.io/library/nginx:1", ("docker.io", "library/nginx", "1", None)),
    ("localhost/app", ("localhost", "app", "latest", None)),
    ("localhost:5000/a/b:c", ("localhost:5000", "a/b", "c", None)),
    ("Registry.Example.com/app", ("registry.example.com", "app", "latest", None)),
    (f"{REG}/team/app:1.2", (REG, "team/app", "1.2", None)),
    (f"{REG}/team/app:1.2@{DIGEST}", (REG, "team/app", None, DIGEST)),
    (f"{REG}/team/app@{DIGEST}", (REG, "team/app", None, DIGEST)),
    ("[fd00::1]:5000/app:v1", ("[fd00::1]:5000", "app", "v1", None)),
])
def test_image_references(reference: str, expected: tuple[object, ...]) -> None:
    assert parse_image(reference) == expected


@pytest.mark.parametrize("reference", [
    "", "Team/App", f"{REG}/", f"{REG}/app:", f"{REG}/app:-x", f"{REG}/app@sha256:abc",
    "a b", f"{REG}/team/app:1.2@",
])
def test_bad_image_references(reference: str) -> None:
    with pytest.raises(Rejected) as caught:
        parse_image(reference)
    assert caught.value.reason == "bad_value"


@pytest.mark.parametrize(("error", "reason"), [
    ("unexpected status from GET request to https://r/v2/: 404 Not Found", Reason.NOT_FOUND),
    ("received unexpected HTTP status: 500 Internal Server Error", Reason.SERVER_ERROR),
    ("unexpected status code 502", Reason.SERVER_ERROR),
    ("failed to resolve reference: r:5000/a:1: not found", Reason.NOT_FOUND),
    ("name unknown: repository name not known to registry", Reason.NOT_FOUND),
    ("unauthorized: authentication required", Reason.AUTH),
    ("pull access denied, repository does not exist or may require authorization: server "
     "message: insufficient_scope: authorization failed", Reason.DENIED),
    ("toomanyrequests: You have reached your pull rate limit.", Reason.RATE_LIMITED),
    ("failed to do request: Head \"https://r:5000/v2/a/manifests/1\": context deadline "
     "exceeded", Reason.TIMEOUT),
    ("net/http: TLS handshake timeout", Reason.TIMEOUT),
    ("dial tcp: lookup r.example.com on 10.96.0.10:53: no such host", Reason.CONNECT),
    ("http: server gave HTTP response to HTTPS client", Reason.TLS),
    ("unexpected commit digest sha256:aa, expected sha256:bb: failed precondition",
     Reason.DIGEST_MISMATCH),
    # not the registry's answers: a port, a size, the node's own file system
    ("dial tcp 10.0.0.1:5000: read: 401 bytes", Reason.PROTOCOL),
    ("failed to extract layer: mkdir /var/lib/containerd/x: permission denied", Reason.PROTOCOL),
    ("SignatureValidationFailed: no signature", Reason.PROTOCOL),
])
def test_failure_reasons_from_the_runtime_error(error: str, reason: Reason) -> None:
    assert pull_failure(error) == reason


def test_the_time_of_the_latest_occurrence() -> None:
    parser = KubernetesEventsParser("eu", "k8s", [REG])
    base = {"reason": "Pulled", "message": f'Successfully pulled image "{REG}/a:1" in 1s'}

    def at(**times: object) -> float:
        result = parser.parse(json.dumps({**base, **times}).encode())
        assert isinstance(result, Observation)
        return result.time

    assert at(firstTimestamp="2026-11-27T08:00:00Z", lastTimestamp="2026-11-27T08:05:00Z",
              eventTime=None) == 1795766700.0
    assert at(eventTime="2026-11-27T08:00:00.250000Z", firstTimestamp=None) == 1795766400.25
    assert at(metadata={"creationTimestamp": "2026-11-27T08:00:01Z"}) == 1795766401.0


def test_config_asks_registries_of_this_format_only() -> None:
    source = {"name": "k8s", "region": "eu", "format": "kubernetes-events",
              "paths": ["/var/log/k8s-events.jsonl"]}
    with pytest.raises(ValidationError, match="registries: required for format kubernetes"):
        LogSourceConfig(**source)  # type: ignore[arg-type]
    ok = LogSourceConfig(**source, registries=[REG, "docker.io"])  # type: ignore[arg-type]
    assert ok.registries == (REG, "docker.io")
    for bad in (["https://registry.example.com"], ["registry.example.com/team"], []):
        with pytest.raises(ValidationError, match="registries"):
            LogSourceConfig(**source, registries=bad)  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="only for it"):
        LogSourceConfig(**{**source, "format": "distribution"},  # type: ignore[arg-type]
                        registries=[REG])


def test_replay_counts_what_the_exporter_would() -> None:
    result = replay([K8S / "kubectl-core-v1.jsonl"], "kubernetes-events", region="eu",
                    source="k8s", registries=[REG]).to_json()
    assert (result["lines"], result["observations"]) == (34, 11)
    assert result["ignored"] == {"already_present": 1, "not_an_operation": 20,
                                 "other_registry": 2}
    assert result["failures"]["eu"]["pull_manifest"]["not_found"] == 2


def sample(metrics: ExporterMetrics, name: str, **labels: str) -> float:
    return metrics.registry.get_sample_value(name, labels) or 0.0


async def test_a_followed_event_log_feeds_the_metrics_and_the_observers(tmp_path: Path) -> None:
    """The exporter's ingest service tails an event log that grows while it runs."""
    log = tmp_path / "events.jsonl"
    lines = (K8S / "kubectl-core-v1.jsonl").read_bytes().splitlines(keepends=True)
    log.write_bytes(b"".join(lines[:17]))
    config = IngestConfig(
        checkpoint_dir=tmp_path / "cp", poll_interval=0.02,
        logs=[{"name": "k8s", "region": "eu", "format": "kubernetes-events",  # type: ignore[list-item]
               "paths": [str(log)], "read_from": "beginning", "registries": [REG]}],
    )
    metrics = ExporterMetrics()
    seen: list[Observation] = []
    service = IngestService(config, metrics.ingest, [seen.append])
    stop = asyncio.Event()
    task = asyncio.create_task(service.run(stop))

    async def lines_read(count: int) -> None:
        for _ in range(250):
            if sample(metrics, "registry_slo_ingest_lines_total", source="k8s") >= count:
                return
            await asyncio.sleep(0.02)

    await lines_read(17)
    with log.open("ab") as out:
        out.write(b"".join(lines[17:]) + b'{"reason": "Pulled", "message": 7}\n')
    await lines_read(35)
    stop.set()
    await asyncio.wait_for(task, 10)

    def get(name: str, **labels: str) -> float:
        return sample(metrics, name, **labels)

    at = {"region": "eu", "source": "k8s", "operation": "pull_manifest"}
    assert get("registry_slo_ingest_lines_total", source="k8s") == 35
    assert get("registry_slo_ingest_observations_total", source="k8s") == 11
    assert get("registry_slo_registry_requests_total", **at, code="") == 11
    for reason, count in (("not_found", 2), ("auth", 1), ("denied", 1), ("timeout", 1),
                          ("connect", 1), ("rate_limited", 1), ("server_error", 1),
                          ("tls", 1)):
        assert get("registry_slo_registry_request_failures_total", **at, reason=reason) == count
    assert get("registry_slo_registry_request_duration_seconds_count", **at) == 2
    assert get("registry_slo_registry_request_duration_seconds_sum", **at) == pytest.approx(
        1.204 + 123.456)
    assert get("registry_slo_registry_bytes_total", **at, direction="egress") == (
        48213377 + 310555123)
    for reason, count in (("already_present", 1), ("other_registry", 2),
                          ("not_an_operation", 20)):
        assert get("registry_slo_ingest_ignored_total", source="k8s", reason=reason) == count
    assert get("registry_slo_ingest_rejected_total", source="k8s", reason="bad_value") == 1
    assert get("registry_slo_registry_repository_requests_total", region="eu",
               repository="team/web", operation="pull_manifest", outcome="failure") == 7
    assert len(seen) == 11 and {o.repository for o in seen} == {
        "team/web", "team/api", "team/secret"}
    assert (tmp_path / "cp" / "k8s.json").exists()
