"""Every log format against mutated and arbitrary lines: each line is an observation, an
ignored line or a rejected one by a known reason — never a parser exception
(``internal_error``), and ``lines = observations + ignored + rejected`` always holds.

Lines start from what real registries wrote (fixtures/: distribution 2.8 in its three
logrus formatters and its access log) or the documented shapes (zot's audit log, Harbor's
forwarded audit line, JSON lines under two ``jsonl`` mappings: nested method/path/status
and operation/success with Unix milliseconds, Kubernetes Events as kubectl, the watch
API, eventrouter and kubernetes-event-exporter write them), with one field replaced by an
arbitrary JSON value, a slice cut out, or bytes appended. The garbage collector's output
(``distribution-gc``: real runs of distribution 2.8's collector in the three formatters,
and the same lines as a CronJob pod's CRI log) goes through the same mutations; its
parser keeps state across lines, so every example is a sequence of them.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from harness.fuzzing import fuzz_settings
from hypothesis import given
from hypothesis import strategies as st

from registry_slo.config import JsonlMapping
from registry_slo.ingest import SourcePipeline, Tally, make_parser
from registry_slo.ingest.formats import REJECTED_REASONS

from .conftest import FIXTURES

ZOT = ('{"level":"info","component":"session","clientIP":"10.0.0.7:41234","subject":"ci-bot",'
       '"action":"PUT","object":"/v2/team/app/manifests/v1","status":201,'
       '"time":"2026-11-27T08:00:01.5Z","message":"HTTP API Audit"}')


def _lines(name: str) -> list[bytes]:
    return [line for line in (FIXTURES / name).read_bytes().splitlines() if line.strip()]


D = "sha256:" + "ef" * 32
HARBOR = [
    (f"{prefix}2026-01-05T08:00:01Z [INFO] [/pkg/auditext/manager.go:79]"
     f'[operator="ci-bot" resourceType="{kind}" time="2026-01-05 08:00:01 +0000 UTC"]: '
     f"action:{action}, resource:{resource}").encode()
    for prefix in ("Jan  5 08:00:01 harbor-core audit[1]: ", "")
    for action, kind, resource in (("create", "artifact", "team/app:v1"),
                                   ("pull", "artifact", f"library/nginx:{D}"),
                                   ("delete", "repository", "team/app"))
]
NESTED = JsonlMapping(method="req.method", path="req.path", status="res.status",
                      duration="res.ms", duration_unit="ms", time="ts", user_agent="req.ua",
                      bytes_received="res.bytes")
EVENTS = JsonlMapping(operation="event", operations={"image.push": "push_manifest"},
                      success="ok", repository="repo", tag="tag", digest="digest",
                      time="at", time_format="unix_ms")

SOURCES: dict[str, tuple[str, list[bytes], JsonlMapping | None]] = {
    "distribution": ("distribution", _lines("distribution-2.8.2.json.log")
                     + _lines("distribution-2.8.2.logstash.log")
                     + _lines("distribution-2.8.2.text.log"), None),
    "distribution-access": ("distribution-access", _lines("distribution-2.8.2.access.log"),
                            None),
    "zot-audit": ("zot-audit", [ZOT.encode()], None),
    "harbor-audit": ("harbor-audit", HARBOR, None),
    "jsonl-nested": ("jsonl", [
        b'{"ts":"2026-01-05T08:00:01Z","req":{"method":"get","path":"/v2/a/blobs/'
        + D.encode() + b'","ua":"docker/24"},"res":{"status":200,"ms":12.5,"bytes":99}}',
        b'{"ts":"2026-01-05T08:00:02Z","req":{"method":"PUT","path":"/v2/a/manifests/v1",'
        b'"ua":"containerd"},"res":{"status":500,"ms":3,"bytes":0}}',
    ], NESTED),
    "jsonl-events": ("jsonl", [
        f'{{"event":"image.push","ok":true,"repo":"a","tag":"v1","digest":"{D}",'
        f'"at":1767600001500}}'.encode(),
        b'{"event":"pull","ok":false,"repo":"a","at":1767600002000}',
    ], EVENTS),
    "distribution-gc": ("distribution-gc", [
        *(line for name in ("gc-json.log", "gc-text.log", "gc-logstash.log")
          for line in _lines(f"gc/{name}")),
        *(b"2026-12-04T12:52:14.338552455Z stdout F " + line
          for line in _lines("gc/gc-json.log")[:12]),
    ], None),
    "kubernetes-events": ("kubernetes-events", [
        line for name in ("kubectl-core-v1.jsonl", "kubelet-older.jsonl",
                          "events-k8s-io-v1.jsonl", "eventrouter.log", "event-exporter.jsonl",
                          "watch-stream.jsonl")
        for line in _lines(f"kubernetes/{name}")
    ], None),
}

_JSON: st.SearchStrategy[Any] = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False),
              st.text(max_size=30)),
    lambda inner: st.one_of(st.lists(inner, max_size=3),
                            st.dictionaries(st.text(max_size=8), inner, max_size=3)),
    max_leaves=10,
)


@st.composite
def mutated(draw: st.DrawFn, lines: list[bytes]) -> bytes:
    line = draw(st.sampled_from(lines))
    how = draw(st.sampled_from(["field", "cut", "append", "bytes"]))
    if how == "field":
        try:
            record = json.loads(line)
        except ValueError:
            how = "cut"
        else:
            if isinstance(record, dict) and record:
                key = draw(st.sampled_from(sorted(record)))
                record[key] = draw(_JSON)
                return json.dumps(record).encode()
            how = "cut"
    if how == "cut":
        start = draw(st.integers(0, len(line)))
        end = draw(st.integers(start, len(line)))
        return line[:start] + line[end:]
    if how == "append":
        return line + draw(st.binary(max_size=40))
    return draw(st.binary(max_size=300))


@pytest.mark.fuzz
@pytest.mark.parametrize("source", sorted(SOURCES))
@fuzz_settings(default=300)
@given(data=st.data())
def test_every_mutated_line_is_accounted_and_never_a_parser_bug(
    source: str, data: st.DataObject
) -> None:
    format_name, originals, mapping = SOURCES[source]
    lines = data.draw(st.lists(mutated(originals), min_size=1, max_size=20))
    tally = Tally()
    pipeline = SourcePipeline("s", make_parser(format_name, "r", "s", mapping), tally)
    pipeline.lines(lines)
    pipeline.flush()
    counts = tally.counts["s"]
    assert counts.lines == len(lines)
    assert counts.lines == (counts.observations + counts.ignored.total()
                            + counts.rejected.total())
    assert not counts.rejected.get("internal_error"), lines
    assert set(counts.rejected) <= set(REJECTED_REASONS)
