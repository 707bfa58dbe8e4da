"""Every log format against mutated and arbitrary lines: each line is an observation, an
ignored line or a rejected one by a known reason — never a parser exception
(``internal_error``), and ``lines = observations + ignored + rejected`` always holds.

Lines start from what real registries wrote (fixtures/: distribution 2.8 in its three
logrus formatters and its access log) or the documented shapes (zot's audit log), with
one field replaced by an arbitrary JSON value, a slice cut out, or bytes appended.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from harness.fuzzing import fuzz_settings
from hypothesis import given
from hypothesis import strategies as st

from registry_slo.ingest import SourcePipeline, Tally, make_parser
from registry_slo.ingest.formats import REJECTED_REASONS

from .conftest import FIXTURES

ZOT = ('{"level":"info","component":"session","clientIP":"10.0.0.7:41234","subject":"ci-bot",'
       '"action":"PUT","object":"/v2/team/app/manifests/v1","status":201,'
       '"time":"2026-11-27T08:00:01.5Z","message":"HTTP API Audit"}')


def _lines(name: str) -> list[bytes]:
    return [line for line in (FIXTURES / name).read_bytes().splitlines() if line.strip()]


SOURCES: dict[str, list[bytes]] = {
    "distribution": (_lines("distribution-2.8.2.json.log")
                     + _lines("distribution-2.8.2.logstash.log")
                     + _lines("distribution-2.8.2.text.log")),
    "distribution-access": _lines("distribution-2.8.2.access.log"),
    "zot-audit": [ZOT.encode()],
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
@pytest.mark.parametrize("format_name", sorted(SOURCES))
@fuzz_settings(default=300)
@given(data=st.data())
def test_every_mutated_line_is_accounted_and_never_a_parser_bug(
    format_name: str, data: st.DataObject
) -> None:
    lines = data.draw(st.lists(mutated(SOURCES[format_name]), min_size=1, max_size=20))
    tally = Tally()
    pipeline = SourcePipeline("s", make_parser(format_name, "r", "s"), tally)
    pipeline.lines(lines)
    pipeline.flush()
    counts = tally.counts["s"]
    assert counts.lines == len(lines)
    assert counts.lines == (counts.observations + counts.ignored.total()
                            + counts.rejected.total())
    assert not counts.rejected.get("internal_error"), lines
    assert set(counts.rejected) <= set(REJECTED_REASONS)
