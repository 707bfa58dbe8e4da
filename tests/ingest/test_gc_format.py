"""The ``distribution-gc`` format: the garbage collector's real output (fixtures/gc/,
captured from distribution 2.8.2 by fixtures/gc/capture.py), the rule that tells a dry
run from a real one, failures, and lines that are not the collector's."""

from __future__ import annotations

import json

import pytest

from registry_slo.ingest import SourcePipeline, Tally, make_parser, replay
from registry_slo.ingest.formats import (
    DistributionGcParser,
    GcDeleted,
    GcFact,
    GcLastSuccess,
    GcReport,
    GcRunEnded,
    GcSummary,
    Rejected,
    rfc3339,
)
from registry_slo.ingest.formats._logrus import logrus_fields
from registry_slo.ingest.formats.gc import SETTLE

from .conftest import FIXTURES

GC = FIXTURES / "gc"
EXPECTED = json.loads((GC / "expected.json").read_text())
LOGS = sorted(EXPECTED)
D1 = "sha256:" + "1" * 64
D2 = "sha256:" + "2" * 64
T0 = 1_797_000_000.0  # after the fixtures were written


class Clock:
    """A wall clock the test moves."""

    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def lines_of(name: str) -> list[bytes]:
    return (GC / name).read_bytes().splitlines()


def feed(parser: DistributionGcParser, lines: list[bytes]) -> list[GcFact]:
    """What the lines report, as the pipeline hands them over (blank lines never reach
    a parser)."""
    facts: list[GcFact] = []
    for line in lines:
        if line.strip():
            result = parser.parse(line)
            if isinstance(result, GcReport):
                facts += result.facts
    return facts


def ended(facts: list[GcFact]) -> list[str]:
    return [f.result for f in facts if isinstance(f, GcRunEnded)]


def logrus_times(lines: list[bytes], prefix: str) -> list[float]:
    out = []
    for line in lines:
        fields = logrus_fields(line.decode())
        if fields is not None and fields.get("msg", fields.get("message", "")).startswith(
                prefix):
            out.append(rfc3339(fields.get("time", fields.get("@timestamp"))))
    return out


@pytest.mark.parametrize("name", LOGS)
def test_real_output_gives_the_runs_it_holds(name: str) -> None:
    """Eight runs appended by cron: two dry runs, a real one with --delete-untagged, one
    with nothing left, a configuration error, an empty storage whose message the next
    run's first line is glued to, that run, and a last failure ended by ``echo``."""
    data = replay([GC / name], "distribution-gc", region="east").to_json()
    expected = EXPECTED[name]
    assert data["garbage_collection"]["east"]["runs"] == expected["runs"]
    assert data["garbage_collection"]["east"]["deleted"] == expected["deleted"]
    assert data["garbage_collection"]["east"]["last_summary"] == expected["last_summary"]
    # Every line accounted once, none an operation, none rejected.
    assert data["observations"] == 0 and data["rejected"] == {}
    assert data["lines"] == sum(data["ignored"].values()) == len(lines_of(name))
    assert data["requests"] == {}


@pytest.mark.parametrize("name", LOGS)
def test_runs_in_order_with_their_totals_and_times(name: str) -> None:
    lines = lines_of(name)
    clock = Clock()
    facts = feed(DistributionGcParser("east", "gc", clock), lines)
    assert ended(facts) == ["dry_run", "dry_run", "ok", "ok", "failed", "failed", "ok",
                            "failed"]
    summaries = [[f.blobs_marked, f.blobs_eligible, f.manifests_eligible]
                 for f in facts if isinstance(f, GcSummary)]
    assert summaries == EXPECTED[name]["summaries"]
    assert [f.kind for f in facts if isinstance(f, GcDeleted)] == [
        "manifest", "blob", "blob", "blob", "blob"]
    # The real run: completed at its last deletion's logrus time, its deletions
    # bracketed from the first (a tag reference) to the last.
    real = [f for f in facts if isinstance(f, GcRunEnded)][2]
    deletions = logrus_times(lines, "deleting manifest tag reference") + \
        logrus_times(lines, "Deleting blob")
    assert real.time == deletions[-1]
    assert real.deletions == (deletions[0], deletions[-1])
    assert real.deleted == 5
    # Dry runs and failures leave the last success alone; a run without timestamps
    # completes at the time it is read.
    successes = [f.time for f in facts if isinstance(f, GcLastSuccess)]
    assert successes == [deletions[-1], T0, T0]
    nothing = [f for f in facts if isinstance(f, GcRunEnded)][3]
    assert nothing.deletions is None and nothing.deleted == 0


def test_the_three_formatters_read_alike() -> None:
    runs = {name: ended(feed(DistributionGcParser("east", "gc"), lines_of(name)))
            for name in LOGS}
    assert len(set(map(tuple, runs.values()))) == 1


# -- the dry-run rule, from real lines ------------------------------------------------

REPO = b"team/app"
MARK = [REPO, f"team/app: marking manifest {D1} ".encode(),
        f"team/app: marking blob {D2}".encode()]


def summary(eligible: int, manifests: int = 0) -> bytes:
    return f"2 blobs marked, {eligible} blobs and {manifests} manifests eligible for " \
           f"deletion".encode()


def eligible(n: int) -> bytes:
    return f"blob eligible for deletion: sha256:{n:064x}".encode()


def deleting(n: int, at: str = "2026-12-04T12:07:37.604166755Z") -> bytes:
    return json.dumps({"level": "info", "msg": f"Deleting blob: /docker/registry/v2/blobs/"
                       f"sha256/00/{n:064x}", "time": at}).encode()


def test_a_dry_run_ends_when_the_next_run_begins_or_after_quiet() -> None:
    clock = Clock()
    parser = DistributionGcParser("east", "gc", clock)
    facts = feed(parser, [*MARK, summary(1), eligible(1)])
    assert ended(facts) == []  # a real run's deletion line may still come
    clock.now += SETTLE - 0.5
    assert parser.settle(clock.now) is None
    clock.now += 0.5
    report = parser.settle(clock.now)
    assert report is not None
    (run,) = [f for f in report.facts if isinstance(f, GcRunEnded)]
    assert run.result == "dry_run" and run.time == T0  # at its last line, not now
    assert not [f for f in report.facts if isinstance(f, GcLastSuccess)]
    # The same run, followed by another one before the quiet: ended by it.
    parser = DistributionGcParser("east", "gc", Clock())
    assert ended(feed(parser, [*MARK, summary(1), eligible(1), *MARK])) == ["dry_run"]


def test_two_blob_lines_without_a_deletion_between_are_a_dry_run() -> None:
    parser = DistributionGcParser("east", "gc", Clock())
    feed(parser, [*MARK, summary(2), eligible(1), eligible(2)])
    report = parser.settle(T0 + SETTLE)
    assert report is not None and ended(list(report.facts)) == ["dry_run"]


def test_a_real_run_is_ok_once_every_eligible_blob_is_deleted() -> None:
    parser = DistributionGcParser("east", "gc", Clock())
    facts = feed(parser, [*MARK, summary(2), eligible(1), deleting(1), eligible(2),
                          deleting(2, "2026-12-04T12:07:38Z")])
    assert ended(facts) == []
    assert [f.kind for f in facts if isinstance(f, GcDeleted)] == ["blob", "blob"]
    facts = feed(parser, MARK)  # the next run
    assert ended(facts) == ["ok"]
    assert [f.time for f in facts if isinstance(f, GcLastSuccess)] == [
        rfc3339("2026-12-04T12:07:38Z")]


def test_deletions_reaching_the_log_after_the_blob_lines_still_make_it_real() -> None:
    """stdout and stderr of a CronJob reach its log through two pipes."""
    parser = DistributionGcParser("east", "gc", Clock())
    facts = feed(parser, [*MARK, summary(1), eligible(1), deleting(1)])
    report = parser.settle(T0 + SETTLE)
    assert report is not None
    assert ended([*facts, *report.facts]) == ["ok"]


def test_the_failed_deletion_of_the_last_blob_fails_the_run() -> None:
    parser = DistributionGcParser("east", "gc", Clock())
    facts = feed(parser, [*MARK, summary(1), eligible(1), deleting(1),
                          f"failed to garbage collect: failed to delete blob "
                          f"sha256:{1:064x}: permission denied".encode()])
    assert ended(facts) == ["failed"]
    assert not [f for f in facts if isinstance(f, GcLastSuccess)]


def test_a_run_cut_short_fails_when_the_next_begins() -> None:
    parser = DistributionGcParser("east", "gc", Clock())
    facts = feed(parser, [*MARK, summary(3), eligible(1), deleting(1), *MARK])
    assert ended(facts) == ["failed"]


def test_untagged_manifests_alone_tell_a_dry_run_from_a_real_one() -> None:
    parser = DistributionGcParser("east", "gc", Clock())
    facts = feed(parser, [*MARK, summary(0, 1), *MARK])
    assert ended(facts) == ["dry_run"]
    manifest = json.dumps({"level": "info", "time": "2026-12-04T12:07:37Z",
                           "msg": "deleting manifest: /docker/registry/v2/repositories/"
                                  f"team/app/_manifests/revisions/sha256/{1:064x}"})
    parser = DistributionGcParser("east", "gc", Clock())
    facts = feed(parser, [*MARK, manifest.encode(), summary(0, 1), *MARK])
    assert ended(facts) == ["ok"]
    assert [f.kind for f in facts if isinstance(f, GcDeleted)] == ["manifest"]


def test_glued_and_other_failures_count_one_run_each() -> None:
    parser = DistributionGcParser("east", "gc", Clock())
    facts = feed(parser, [
        b"failed to garbage collect: failed to mark: filesystem: Path not found: "
        b"/docker/registry/v2/repositoriesfailed to garbage collect: failed to mark: x",
        b"Error: unknown flag: --bogus",
        b"failed to construct s3aws driver: no region",
        b"unable to configure logging with config: unknown formatter",
        b'{"level":"fatal","msg":"boom","time":"2026-12-04T12:07:37Z"}',
        b"configuration error: open /etc/registry.yml: no such file or directory",
        b"Usage:", b"  registry garbage-collect <config> [flags]", b"Flags:",
        b"  -d, --dry-run           do everything except remove the blobs",
    ])
    assert ended(facts) == ["failed"] * 7


def test_deletions_of_a_run_begun_before_the_source_read_it_still_count() -> None:
    """read_from: end in the middle of a run: its deletions count, it does not."""
    parser = DistributionGcParser("east", "gc", Clock())
    facts = feed(parser, [eligible(1), deleting(1)])
    assert [f.kind for f in facts if isinstance(f, GcDeleted)] == ["blob"]
    assert ended(facts) == []


def test_a_cronjob_pods_cri_log_is_read_with_its_times() -> None:
    """The kubelet's log files: ``<time> <stream> <F|P> <line>``."""
    prefix = b"2026-12-04T12:00:00.5+00:00 stdout F "
    parser = DistributionGcParser("east", "gc", Clock())
    facts = feed(parser, [prefix + line for line in [*MARK, summary(0)]])
    facts += feed(parser, [b"2026-12-04T12:00:09Z stderr F configuration error: x"])
    runs = [f for f in facts if isinstance(f, GcRunEnded)]
    assert [r.result for r in runs] == ["ok", "failed"]
    assert runs[0].time == rfc3339("2026-12-04T12:00:00.5Z")


# -- accounting: lines that are not the collector's -----------------------------------

@pytest.mark.parametrize(("line", "bucket", "reason"), [
    (b"hello world", "rejected", "unknown_format"),
    (b"GET /v2/ HTTP/1.1", "rejected", "unknown_format"),
    (b"{not json", "rejected", "malformed_json"),
    (b"[1, 2]", "rejected", "unknown_format"),
    (b'{"level":"info","time":"2026-12-04T12:07:37Z"}', "rejected", "missing_field"),
    (b'{"level":"info","msg":"Deleting blob: /x"}', "rejected", "missing_field"),
    (b'{"level":"info","msg":"Deleting blob: /x","time":"yesterday"}', "rejected",
     "bad_value"),
    (b'{"level":"info","msg":"Deleting blob: /x","time":"1999-01-01T00:00:00Z"}',
     "rejected", "bad_value"),
    (b'time="2026-12-04T12:07:37Z" level=info msg="Deleting blob: /x"', "ignored",
     "not_an_operation"),
    (b'level=info msg="Deleting blob: /x"', "rejected", "missing_field"),
    (b"team/app: marking blob not-a-digest", "rejected", "bad_value"),
    (b"Team/App: marking blob " + D1.encode(), "rejected", "bad_value"),
    (b"99999999999999999999 blobs marked, 1 blobs and 0 manifests eligible for deletion",
     "rejected", "bad_value"),
    (b"blob eligible for deletion: sha256", "rejected", "bad_value"),
    (b"9999-01-01T00:00:00Z stdout F team/app", "rejected", "bad_value"),
    (b"2026-13-01T00:00:00Z stdout F team/app", "rejected", "bad_value"),
    (b"2026-12-01T00:00:00Z stdout F ", "ignored", "not_an_operation"),
    (b'{"level":"info","msg":"redis not configured","time":"2026-12-04T12:07:37Z"}',
     "ignored", "not_an_operation"),
    (b"team/app: layer link eligible for deletion: " + D1.encode(), "ignored",
     "not_an_operation"),
    (b"\xff\xfe", "rejected", "non_utf8"),
    (b"   ", "ignored", "blank"),
    (b"{" * 40000 + b"}", "rejected", "malformed_json"),
])
def test_every_line_is_accounted_once(line: bytes, bucket: str, reason: str) -> None:
    tally = Tally()
    pipeline = SourcePipeline("gc", make_parser("distribution-gc", "east", "gc"), tally)
    pipeline.lines([line])
    pipeline.flush()
    counts = tally.counts["gc"]
    assert counts.lines == 1 and counts.observations == 0
    assert getattr(counts, bucket) == {reason: 1}, (counts.ignored, counts.rejected)


def test_a_rejected_line_leaves_the_run_as_it_was() -> None:
    parser = DistributionGcParser("east", "gc", Clock())
    feed(parser, [*MARK, summary(1), eligible(1)])
    before = parser.snapshot()
    with pytest.raises(Rejected, match="bad_value"):
        parser.parse(b"blob eligible for deletion: nope")
    assert parser.snapshot() == before
