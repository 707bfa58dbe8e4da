"""Registry notifications: the real registry's envelopes (fixtures/), Harbor webhooks built
from their documented shapes, and the receiver (bearer token, size limit, dedup, bad
bodies acknowledged and counted)."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest
from harness.fuzzing import fuzz_settings
from hypothesis import given
from hypothesis import strategies as st

from registry_slo.config import Settings
from registry_slo.ingest import (
    Deduplicator,
    IngestService,
    NotificationReceiver,
    NotificationsConfig,
    SourcePipeline,
    TagOverwriteDetector,
    Tally,
)
from registry_slo.ingest.formats import Ignored, Rejected
from registry_slo.ingest.notify import distribution_records, harbor_records
from registry_slo.observation import Observation
from registry_slo.sli.engine import SLIEngine
from registry_slo.telemetry.metrics import ExporterMetrics
from registry_slo.vocabulary import OPERATIONS

from .conftest import FIXTURES

ENVELOPES: list[dict[str, Any]] = json.loads(
    (FIXTURES / "distribution-2.8.2.notifications.json").read_text()
)
D = "sha256:" + "ef" * 32


def test_real_registry_envelopes() -> None:
    """skopeo push (2 blobs + manifest), pull (manifest + 2 blobs), delete (manifest GET +
    DELETE, which 2.8 notifies as a digest delete plus a tag delete)."""
    counts: Counter[tuple[object, ...]] = Counter()
    for envelope in ENVELOPES:
        assert envelope["content_type"] == "application/vnd.docker.distribution.events.v1+json"
        for event_id, result in distribution_records(envelope["body"], "r", "s"):
            assert event_id
            if isinstance(result, Ignored):
                counts[("ignored", result.reason)] += 1
            else:
                counts[(result.operation, result.repository, result.tag)] += 1
                assert result.success and not result.timed and result.time > 1.7e9
    assert counts == Counter({
        ("push_blob", "team/app", None): 2, ("push_manifest", "team/app", "v1"): 1,
        ("pull_manifest", "team/app", "v1"): 2, ("pull_blob", "team/app", None): 2,
        ("delete", "team/app", None): 1, ("ignored", "not_an_operation"): 1,
    })


def test_distribution_event_details() -> None:
    records = [r for e in ENVELOPES for _, r in distribution_records(e["body"], "r", "s")]
    push = next(r for r in records if isinstance(r, Observation) and r.operation == "push_manifest")
    assert push.digest is not None and push.digest.startswith("sha256:") and push.method == "PUT"
    assert push.bytes_sent > 0
    blob = next(r for r in records if isinstance(r, Observation) and r.operation == "pull_blob")
    assert blob.bytes_received > 0 and blob.digest is None
    probe = json.loads(json.dumps(ENVELOPES[0]["body"]))
    probe["events"][0]["request"]["useragent"] = "registry-slo/0.1.0"
    assert distribution_records(probe, "r", "s")[0][1] == Ignored("probe_traffic")


@pytest.mark.parametrize("body", [[], {"events": "x"}, {"nope": []}])
def test_distribution_bad_envelopes(body: object) -> None:
    with pytest.raises(Rejected):
        distribution_records(body, "r", "s")


# Harbor Default payload: src/pkg/notifier/model/event.go (Payload, EventData, Resource,
# Repository); CloudEvents: src/pkg/notifier/formats/cloudevents.go (its doc comment).
def harbor_default(kind: str = "PUSH_ARTIFACT", tag: str = "v1") -> dict[str, Any]:
    return {
        "type": kind, "occur_at": 1767600001, "operator": "ci-bot",
        "event_data": {
            "resources": [{"digest": D, "tag": tag,
                           "resource_url": f"harbor.example.internal/team/app:{tag}"}],
            "repository": {"date_created": 1767000000, "name": "app", "namespace": "team",
                           "repo_full_name": "team/app", "repo_type": "private"},
        },
    }


def harbor_cloudevent(kind: str = "harbor.artifact.pulled") -> dict[str, Any]:
    return {
        "specversion": "1.0", "requestid": "2eedfab8", "id": "4b2f89a6-548d",
        "source": "/projects/1/webhook/policies/3", "type": kind,
        "datacontenttype": "application/json", "time": "2026-01-05T08:00:01Z",
        "data": {
            "resources": [{"digest": D, "tag": D,
                           "resource_url": f"harbor.example.internal/team/app@{D}"}],
            "repository": {"date_created": 1767000000, "name": "app", "namespace": "team",
                           "repo_full_name": "team/app", "repo_type": "private"},
        },
        "operator": "robot$ci",
    }


def test_harbor_default_and_cloudevents() -> None:
    raw = json.dumps(harbor_default()).encode()
    [(event_id, push)] = harbor_records(raw, json.loads(raw), "r", "s")
    assert isinstance(push, Observation)
    assert (push.operation, push.repository, push.tag, push.digest, push.time) == (
        "push_manifest", "team/app", "v1", D, 1767600001.0)
    assert event_id is not None and event_id.startswith("sha256:")  # body hash: no id
    body = harbor_cloudevent()
    [(event_id, pull)] = harbor_records(json.dumps(body).encode(), body, "r", "s")
    assert event_id == "4b2f89a6-548d#0"
    assert isinstance(pull, Observation)
    assert (pull.operation, pull.tag, pull.digest) == ("pull_manifest", None, D)
    scan = harbor_cloudevent("harbor.scan.completed")
    assert harbor_records(b"{}", scan, "r", "s")[0][1] == Ignored("not_an_operation")
    deleted = harbor_default("DELETE_ARTIFACT")
    assert harbor_records(b"x", deleted, "r", "s")[0][1].operation == "delete"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "body",
    [
        {"occur_at": 1},  # no type
        {"type": "PUSH_ARTIFACT", "occur_at": 1},  # no event_data
        {"type": "PUSH_ARTIFACT", "event_data": {"resources": [], "repository": {}}},
        {**harbor_default(), "occur_at": "yesterday"},
    ],
)
def test_harbor_bad_payloads(body: dict[str, Any]) -> None:
    with pytest.raises(Rejected):
        harbor_records(json.dumps(body).encode(), body, "r", "s")


def test_deduplicator_forgets_the_oldest() -> None:
    dedup = Deduplicator(3)
    assert [dedup.seen(x) for x in "abca"] == [False, False, False, True]
    assert not dedup.seen("d")  # "b" forgotten now
    assert not dedup.seen("b")
    assert len(dedup) == 3


def test_deduplicator_memory_is_bounded_in_bytes() -> None:
    """200 ids of 900 KB once took 170 MB; long ids are now kept as their SHA-256."""
    dedup = Deduplicator(200)
    ids = [f"{i:06d}" + "x" * 900_000 for i in range(200)]
    assert not any(dedup.seen(i) for i in ids)
    assert all(dedup.seen(i) for i in ids)  # still recognised
    assert sum(len(k) for k in dedup._ids) <= 200 * 71
    assert not dedup.seen("0" * 900_001)


def receiver(tmp_token: str | None = None, **config: Any) -> tuple[NotificationReceiver, Tally,
                                                                   list[tuple[str, int]]]:
    options: dict[str, Any] = {
        "endpoints": [{"name": "dist", "region": "r", "format": "distribution"},
                      {"name": "hb", "region": "r", "format": "harbor", "path": "/harbor"}],
        **config,
    }
    cfg = NotificationsConfig(**options)
    tally = Tally()
    overwrites = TagOverwriteDetector()
    pipelines = {e.name: SourcePipeline(e.name, None, tally, None, overwrites)
                 for e in cfg.endpoints}
    answers: list[tuple[str, int]] = []
    return NotificationReceiver(cfg, pipelines, lambda s, c: answers.append((s, c))), tally, \
        answers


async def post(app: Any, path: str, body: bytes, **headers: str) -> httpx.Response:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://receiver") as client:
        return await client.post(path, content=body, headers=headers)


async def test_receiver_counts_each_event_once() -> None:
    rec, tally, answers = receiver()
    for envelope in ENVELOPES:
        response = await post(rec.app, "/notifications/dist", json.dumps(envelope["body"]).encode(),
                              **{"content-type": envelope["content_type"]})
        assert response.status_code == 200
    for envelope in ENVELOPES[:3]:  # the registry resends what it could not confirm
        response = await post(rec.app, "/notifications/dist", json.dumps(envelope["body"]).encode())
        assert response.json() == {"accepted": 0, "duplicates": 1}
    counts = tally.counts["dist"]
    assert (counts.lines, counts.observations, counts.ignored["duplicate"]) == (12, 8, 3)
    assert sum(n for (_, op, _), n in tally.requests.items() if op == "push_manifest") == 1
    assert answers == [("dist", 200)] * 12


async def test_one_bad_event_does_not_take_its_envelope_down() -> None:
    """Nine good events and one that cannot be read: nine count, one is rejected; the
    registry does not resend an envelope answered 200, so dropping all ten loses nine."""
    events = [e for env in ENVELOPES for e in env["body"]["events"]]
    good = [json.loads(json.dumps(e)) for e in events if e["action"] == "pull"]
    nine = [dict(good[i % len(good)], id=f"good-{i}") for i in range(9)]
    broken = json.loads(json.dumps(good[0]))
    broken["id"] = "broken"
    del broken["target"]["repository"]
    body = json.dumps({"events": [*nine[:4], broken, 7, *nine[4:]]}).encode()
    rec, tally, _ = receiver()
    response = await post(rec.app, "/notifications/dist", body)
    assert response.status_code == 200
    assert response.json() == {"accepted": 9, "duplicates": 0, "rejected": 2}
    counts = tally.counts["dist"]
    assert (counts.lines, counts.observations) == (11, 9)
    assert counts.rejected == {"missing_field": 1, "malformed_json": 1}
    assert counts.lines == counts.observations + counts.ignored.total() + counts.rejected.total()


async def test_receiver_token_size_and_bad_bodies() -> None:
    import os

    os.environ["RSLO_TEST_TOKEN"] = "s3cret"
    try:
        rec, tally, answers = receiver(bearer_token_env="RSLO_TEST_TOKEN", max_body_bytes=2048)
    finally:
        del os.environ["RSLO_TEST_TOKEN"]
    body = json.dumps(ENVELOPES[0]["body"]).encode()
    assert (await post(rec.app, "/notifications/dist", body)).status_code == 401
    bad = await post(rec.app, "/notifications/dist", body, authorization="Bearer nope")
    assert bad.status_code == 401
    auth = {"authorization": "Bearer s3cret"}
    assert (await post(rec.app, "/notifications/dist", body, **auth)).status_code == 200
    big = await post(rec.app, "/notifications/dist", b"{" + b" " * 4096 + b"}", **auth)
    assert big.status_code == 413
    broken = await post(rec.app, "/notifications/dist", b'{"events": [', **auth)
    assert broken.status_code == 202  # acknowledged: a resend would not be any better
    assert (await post(rec.app, "/harbor", b"\xff\xfe", **auth)).status_code == 202
    assert tally.counts["dist"].rejected == {"body_too_large": 1, "malformed_json": 1}
    assert tally.counts["hb"].rejected == {"malformed_json": 1}
    assert [code for _, code in answers] == [401, 401, 200, 413, 202, 202]


async def test_harbor_overwrite_through_the_receiver() -> None:
    rec, tally, _ = receiver()
    first = harbor_default(tag="stable")
    second = json.loads(json.dumps(first))
    second["event_data"]["resources"][0]["digest"] = "sha256:" + "01" * 32
    second["occur_at"] += 60
    for body in (first, second, second):  # the last one is a retried delivery
        await post(rec.app, "/harbor", json.dumps(body).encode())
    assert dict(tally.overwrites) == {("r", "-"): 1}
    assert tally.counts["hb"].ignored["duplicate"] == 1


def test_a_blob_head_is_a_check_as_in_the_log() -> None:
    body = json.loads(json.dumps(ENVELOPES[4]["body"]))  # a blob pull
    event = body["events"][0]
    assert event["action"] == "pull" and event["target"]["mediaType"] == "application/octet-stream"
    event["request"]["method"] = "HEAD"
    [(_, result)] = distribution_records(body, "r", "s")
    assert isinstance(result, Observation)
    assert (result.operation, result.bytes_received) == ("check_blob", 0)


def _with(path: str, value: Any) -> bytes:
    """The first real envelope with ``value`` at ``path`` (dots) of its first event."""
    body = json.loads(json.dumps(ENVELOPES[0]["body"]))
    node = body["events"][0]
    *parents, last = path.split(".")
    for key in parents:
        node = node[key]
    node[last] = value
    return json.dumps(body).encode()


@pytest.mark.parametrize(("name", "path", "body"), [
    ("nested 100k deep", "/notifications/dist", b"[" * 100_000 + b"]" * 100_000),
    ("nested 100k deep", "/harbor", b'{"x":' + b"[" * 100_000 + b"]" * 100_000 + b"}"),
    ("a superscript in the fraction", "/notifications/dist",
     _with("timestamp", "2026-11-27T03:36:10.\u00b2Z")),
    ("a negative size", "/notifications/dist", _with("target.size", -1_000_000)),
    ("a size of 10**400", "/notifications/dist", _with("target.size", 10**400)),
    ("occur_at 10**400", "/harbor",
     json.dumps({**harbor_default(), "occur_at": 10**400}).encode()),
])
async def test_hostile_bodies_are_counted_never_a_500(name: str, path: str, body: bytes) -> None:
    rec, tally, _ = receiver()
    response = await post(rec.app, path, body)
    assert response.status_code in (200, 202), name
    counts = tally.counts["dist" if path.startswith("/notifications") else "hb"]
    assert counts.lines == counts.observations + counts.ignored.total() + counts.rejected.total()
    assert counts.rejected.total() >= 1, name


_JSON = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False),
              st.text(max_size=20)),
    lambda inner: st.one_of(st.lists(inner, max_size=4),
                            st.dictionaries(st.text(max_size=10), inner, max_size=4)),
    max_leaves=20,
)
_KEYS = ["id", "timestamp", "action", "target", "request", "size", "repository", "tag",
         "digest", "mediaType", "method", "useragent", "events", "type", "occur_at",
         "event_data", "resources", "repo_full_name"]


@pytest.mark.fuzz
@fuzz_settings(default=200)
@given(envelope=st.one_of(
    _JSON,
    st.fixed_dictionaries({"events": st.lists(st.dictionaries(
        st.sampled_from(_KEYS), _JSON, max_size=8), max_size=4)}),
    st.builds(lambda base, key, value: {**base, key: value},
              st.sampled_from([harbor_default()]), st.sampled_from(_KEYS), _JSON),
), path=st.sampled_from(["/notifications/dist", "/harbor"]))
async def test_any_json_body_is_answered_2xx_and_accounted(envelope: Any, path: str) -> None:
    rec, tally, _ = receiver()
    response = await post(rec.app, path, json.dumps(envelope).encode())
    assert response.status_code in (200, 202)
    for counts in tally.counts.values():
        assert counts.lines == (counts.observations + counts.ignored.total()
                                + counts.rejected.total())


# -- durable acknowledgement: the answer comes after the commit ---------------------


def _durable_settings(state: Path) -> Settings:
    return Settings.model_validate({
        "state_dir": str(state),
        "regions": [{"name": "r", "url": "http://127.0.0.1:1"}],
        "ingest": {"notifications": {"endpoints": [
            {"name": "dist", "region": "r", "format": "distribution"}]}},
        "slos": [{"name": "pushes", "objective": 99,
                  "sli": {"kind": "traffic_success", "operations": list(OPERATIONS),
                          "sources": ["dist"]}}],
    })


def _committed(state: Path) -> tuple[set[str], float]:
    """What the store file holds, read by another connection: ids and events counted."""
    db = sqlite3.connect(state / "slo.sqlite3")
    try:
        ids = {str(row[0]) for row in db.execute("SELECT id FROM seen")}
        (total,) = db.execute("SELECT COALESCE(SUM(total), 0) FROM buckets "
                              "WHERE width = 60").fetchone()
    finally:
        db.close()
    return ids, float(total)


async def test_an_acknowledged_event_is_already_committed(tmp_path: Path) -> None:
    """Every 2xx answer finds its events' ids and counts in the store file (the engine's
    flush interval is an hour: only the commit the answer asks for can put them there);
    after a restart a resent envelope is a duplicate."""
    settings = _durable_settings(tmp_path / "state")
    engine = SLIEngine(settings.slo_targets(), settings.state_dir, flush_interval=3600)
    engine.open()
    stop = asyncio.Event()
    running = asyncio.create_task(engine.run(stop))
    service = IngestService(settings.ingest, ExporterMetrics().ingest, [engine.observe],
                            journals=engine.journal)
    assert service.receiver is not None
    app = service.receiver.app
    answered: set[str] = set()
    for envelope in ENVELOPES:
        body = envelope["body"]
        response = await asyncio.wait_for(
            post(app, "/notifications/dist", json.dumps(body).encode()), 30)
        assert response.status_code == 200
        answered |= {e["id"] for e in body["events"]}
        ids, total = _committed(tmp_path / "state")
        assert ids == answered
        (status,) = engine.evaluate()
        assert total == status.period.total  # every event counted so far is committed
    counted = status.period.total
    assert counted == 8  # the fixture's events the SLO counts
    stop.set()
    await running
    again = SLIEngine(settings.slo_targets(), settings.state_dir, flush_interval=3600)
    again.open()
    restarted = IngestService(settings.ingest, ExporterMetrics().ingest, [again.observe],
                              journals=again.journal)
    assert restarted.receiver is not None
    stop = asyncio.Event()
    running = asyncio.create_task(again.run(stop))
    first = ENVELOPES[0]["body"]
    response = await post(restarted.receiver.app, "/notifications/dist",
                          json.dumps(first).encode())
    assert response.json() == {"accepted": 0, "duplicates": len(first["events"])}
    (status,) = again.evaluate()
    assert status.period.total == counted
    stop.set()
    await running
