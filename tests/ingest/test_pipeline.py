"""Accounting: every line is exactly one observation, ignored line or rejected line."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import ClassVar

import pytest

from registry_slo.ingest import (
    JsonlMapping,
    RepositoryLabeler,
    RepositoryLabels,
    SourcePipeline,
    TagOverwriteDetector,
    Tally,
    make_parser,
    replay,
)
from registry_slo.ingest.formats import Ignored
from registry_slo.observation import Observation

from .conftest import FIXTURES

GOOD = (FIXTURES / "distribution-2.8.2.json.log").read_bytes()


def test_bad_input_is_counted_by_reason_and_good_lines_still_count(tmp_path: Path) -> None:
    bad = [
        b'{"msg":"response completed", broken',   # malformed JSON
        b"\xff\xfe not utf-8 \xc3\x28",           # non-UTF-8
        b"G" * 5000,                              # longer than max_line_bytes
        b"a line in some other format",           # unknown format
        b"   ",                                   # blank
    ]
    path = tmp_path / "mixed.log"
    path.write_bytes(b"\n".join(bad) + b"\n" + GOOD)
    result = replay([path], "distribution", max_line_bytes=4096)
    data = result.to_json()
    assert data["rejected"] == {"malformed_json": 1, "non_utf8": 1, "line_too_long": 1,
                                "unknown_format": 1}
    assert data["ignored"]["blank"] == 1
    clean = replay([FIXTURES / "distribution-2.8.2.json.log"], "distribution").to_json()
    assert data["observations"] == clean["observations"] == 18
    assert data["lines"] == clean["lines"] + len(bad)
    assert data["lines"] == (data["observations"] + sum(data["ignored"].values())
                             + sum(data["rejected"].values()))


class Exploding:
    format: ClassVar[str] = "exploding"

    def parse(self, line: bytes) -> Observation | Ignored:
        if line == b"boom":
            raise RuntimeError("a parser bug")
        return Ignored("not_an_operation")


def test_a_parser_bug_is_counted_and_the_source_goes_on() -> None:
    tally = Tally()
    pipeline = SourcePipeline("s", Exploding(), tally)
    pipeline.lines([b"ok", b"boom", b"ok"])
    pipeline.flush()
    counts = tally.counts["s"]
    assert (counts.lines, counts.rejected["internal_error"], counts.ignored["not_an_operation"]) \
        == (3, 1, 2)


class FailingSink(Tally):
    """A sink whose accounting raises for one repository (as a negative counter
    increment once did inside the metrics)."""

    def observe(self, observation: Observation, repository: str | None) -> None:
        if observation.repository == "team/broken":
            raise ValueError("counters can only be incremented by non-negative amounts")
        super().observe(observation, repository)


def test_a_failing_sink_loses_one_record_not_its_neighbours() -> None:
    lines = [line for line in GOOD.splitlines()
             if b'"response completed"' in line and b"registry-slo" not in line]
    broken = next(line for line in lines if b"/manifests/" in line)
    broken = broken.replace(b"/v2/team/app/", b"/v2/team/broken/", 1)
    assert b"team/broken" in broken
    sink = FailingSink()
    pipeline = SourcePipeline("s", make_parser("distribution", "r", "s"), sink)
    pipeline.lines([*lines, broken, *lines])
    pipeline.flush()
    counts = sink.counts["s"]
    clean = Tally()
    plain = SourcePipeline("s", make_parser("distribution", "r", "s"), clean)
    plain.lines([*lines, *lines])
    plain.flush()
    assert counts.observations == clean.counts["s"].observations
    assert counts.rejected["internal_error"] == 1
    assert counts.lines == 2 * len(lines) + 1
    assert counts.lines == (counts.observations + counts.ignored.total()
                            + counts.rejected.total())
    # notification records go through the same accounting
    events = SourcePipeline("e", None, sink)
    observation = next(o for o in (make_parser("distribution", "r", "e").parse(line)
                                   for line in lines) if isinstance(o, Observation))
    bad = dataclasses.replace(observation, repository="team/broken")
    events.records([observation, bad, observation])
    events.flush()
    assert (sink.counts["e"].observations, sink.counts["e"].rejected["internal_error"]) == (2, 1)


def test_repository_labels_and_overwrites_reach_the_sink() -> None:
    tally = Tally()
    parser = make_parser("jsonl", "r", "s", JsonlMapping(
        operation="op", success="ok", repository="repo", tag="tag", digest="digest"))
    pipeline = SourcePipeline("s", parser, tally,
                              RepositoryLabeler(RepositoryLabels(allow=("team/*",))),
                              TagOverwriteDetector())
    lines = [
        b'{"op":"push_manifest","ok":true,"repo":"team/a","tag":"v1","digest":"sha256:1"}',
        b'{"op":"push_manifest","ok":true,"repo":"team/a","tag":"v1","digest":"sha256:1"}',
        b'{"op":"push_manifest","ok":true,"repo":"team/a","tag":"v1","digest":"sha256:2"}',
        b'{"op":"push_manifest","ok":true,"repo":"else/b","tag":"v1","digest":"sha256:1"}',
        b'{"op":"push_manifest","ok":true,"repo":"else/b","tag":"v1","digest":"sha256:3"}',
    ]
    pipeline.lines(lines)
    pipeline.flush()
    assert dict(tally.repositories) == {("r", "team/a"): 3, ("r", "other"): 2}
    assert dict(tally.overwrites) == {("r", "team/a"): 1, ("r", "other"): 1}


@pytest.mark.parametrize("limit", [2048, 8192])
def test_giant_lines_across_chunks_are_one_rejection_each(tmp_path: Path, limit: int) -> None:
    path = tmp_path / "giant.log"
    path.write_bytes(b"x" * (3 << 20) + b"\n" + GOOD + b"y" * (limit + 1) + b"\n")
    data = replay([path], "distribution", max_line_bytes=limit).to_json()
    assert data["rejected"] == {"line_too_long": 2}
    assert data["observations"] == 18
