"""OpenSLO interop held to OpenSLO's own published v1 JSON schemas, and an importer that
refuses malformed documents by document and field instead of failing."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml
from harness.fuzzing import fuzz_settings
from hypothesis import given
from hypothesis import strategies as st
from jsonschema import Draft7Validator
from referencing import Registry, Resource

from registry_slo.config import load_config
from registry_slo.interop import dump_documents, export_openslo, import_documents, load_documents

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "regions.yaml"
SCHEMAS = Path(__file__).parent / "schemas" / "openslo-v1"


@cache
def validator() -> Draft7Validator:
    """OpenSLO's v1 schema, its ``$ref``s resolved from the vendored parts (offline)."""
    registry: Registry[Any] = Registry()
    for path in SCHEMAS.rglob("*.schema.json"):
        schema = json.loads(path.read_text(encoding="utf-8"))
        registry = registry.with_resource(schema["$id"], Resource.from_contents(schema))
    root = json.loads((SCHEMAS / "openslo.schema.json").read_text(encoding="utf-8"))
    return Draft7Validator(root, registry=registry)


def schema_errors(document: dict[str, Any]) -> list[str]:
    return [f"{'.'.join(map(str, e.absolute_path))}: {e.message}"
            for e in validator().iter_errors(document)]


def test_the_schema_rejects_what_the_spec_rejects() -> None:
    # The check itself can fail: an annotation prefix without a dot is not a DNS subdomain.
    bad = {"apiVersion": "openslo/v1", "kind": "Service",
           "metadata": {"name": "x", "annotations": {"registry-slo/region": "a"}},
           "spec": {}}
    assert schema_errors(bad)
    bad["metadata"]["annotations"] = {"registry-slo.dev/region": "a"}
    assert schema_errors(bad) == []


def test_every_exported_document_is_valid_openslo() -> None:
    documents = export_openslo(load_config(EXAMPLE))
    assert len(documents) == 18
    # Through YAML, as users read them.
    for document in yaml.safe_load_all(dump_documents(documents)):
        assert schema_errors(document) == [], document["metadata"]["name"]


def exported() -> list[dict[str, Any]]:
    return export_openslo(load_config(EXAMPLE))


def test_exports_with_the_old_annotation_keys_still_import() -> None:
    documents = exported()
    old = copy.deepcopy(documents)
    for document in old:
        annotations = document["metadata"]["annotations"]
        document["metadata"]["annotations"] = {
            key.replace("registry-slo.dev/", "registry-slo/"): value
            for key, value in annotations.items()}
    new = import_documents([(f"new#{i}", d) for i, d in enumerate(documents)])
    back = import_documents([(f"old#{i}", d) for i, d in enumerate(old)])
    assert new.complete and back.complete
    assert back.slos == new.slos
    assert {s["name"] for s in back.slos} == {s.name for s in load_config(EXAMPLE).slos}


def pull_slo(**changes: Any) -> dict[str, Any]:
    """The exported pull-availability SLO of one region, with top-level spec changes."""
    document = next(d for d in exported() if d["kind"] == "SLO"
                    and d["spec"]["indicator"]["spec"].get("ratioMetric"))
    document = copy.deepcopy(document)
    document["spec"].update(changes)
    return document


def set_path(document: dict[str, Any], path: str | tuple[str | int, ...],
             value: Any) -> dict[str, Any]:
    """Set the value at ``path`` (``a.0.b``, or a tuple of keys and indexes)."""
    target: Any = document
    keys = path.split(".") if isinstance(path, str) else path
    for key in keys[:-1]:
        target = target[int(key)] if isinstance(target, list) else target[key]
    last = keys[-1]
    if isinstance(target, list):
        target[int(last)] = value
    else:
        target[last] = value
    return document


def lag_slo() -> dict[str, Any]:
    return copy.deepcopy(next(d for d in exported() if d["kind"] == "SLO"
                              and "thresholdMetric" in d["spec"]["indicator"]["spec"]))


@pytest.mark.parametrize(("path", "value", "field"), [
    ("metadata.labels", ["a"], "metadata.labels: must be a mapping, not a list"),
    ("metadata.annotations", ["a"], "metadata.annotations: must be a mapping, not a list"),
    ("spec.objectives", {"target": 0.99}, "spec.objectives: must be a list, not a mapping"),
    ("spec.timeWindow", {"duration": "30d"}, "spec.timeWindow: must be a list, not a mapping"),
    ("spec.objectives.0.target", None, "objectives[0]: no target"),
    ("spec.objectives.0.target", "high", "objectives[0].target: must be a number, not a string"),
    ("spec.indicator.spec.ratioMetric", "x", "ratioMetric: must be a mapping, not a string"),
    ("spec", [], "spec: must be a mapping, not a list"),
])
def test_malformed_slo_documents_are_refused_by_field(path: str, value: Any, field: str) -> None:
    document = set_path(pull_slo(), path, value)
    result = import_documents([("in.yaml#3", document)])
    assert result.slos == []
    assert len(result.skipped) == 1, result.skipped
    assert result.skipped[0].startswith("in.yaml#3 (SLO "), result.skipped
    assert field in result.skipped[0]


def test_a_threshold_value_that_is_not_a_number_is_refused_by_field() -> None:
    document = set_path(lag_slo(), "spec.objectives.0.value", "thirty")
    result = import_documents([("lag.yaml#1", document)])
    assert result.slos == []
    assert "objectives[0].value: must be a number, not a string ('thirty')" in result.skipped[0]


def test_lag_slices_at_less_than_all_good_are_refused() -> None:
    document = lag_slo()
    document["spec"]["budgetingMethod"] = "Timeslices"
    document["spec"]["objectives"][0].update(timeSliceTarget=0.5, timeSliceWindow="1h")
    result = import_documents([("lag.yaml#1", document)])
    assert result.slos == []
    assert "timeSliceTarget 50 %" in result.skipped[0]
    assert "1h slices" in result.skipped[0]


def test_lag_slices_all_good_map_with_a_note_on_their_length() -> None:
    document = lag_slo()
    document["spec"]["budgetingMethod"] = "Timeslices"
    document["spec"]["objectives"][0].update(timeSliceTarget=1, timeSliceWindow="5m")
    result = import_documents([("lag.yaml#1", document)])
    assert [s["sli"]["kind"] for s in result.slos] == ["replication_lag"]
    assert any("timeSliceWindow 5m" in note for note in result.notes), result.notes


DATASOURCE = """\
apiVersion: openslo/v1
kind: DataSource
metadata: {name: prom}
spec:
  type: Prometheus
  connectionDetails: {url: "http://prometheus:9090"}
"""


def with_source_ref(document: dict[str, Any], ref: str) -> dict[str, Any]:
    ratio = document["spec"]["indicator"]["spec"]["ratioMetric"]
    for side in ("good", "bad", "total"):
        if side in ratio:
            source = ratio[side]["metricSource"]
            del source["type"]
            source["metricSourceRef"] = ref
    return document


def test_a_metric_source_ref_resolves_to_a_datasource_of_the_input() -> None:
    inline = pull_slo()
    referring = with_source_ref(pull_slo(), "prom")
    assert schema_errors(referring) == []
    stream = DATASOURCE + "---\n" + dump_documents([referring])
    result = import_documents(load_documents(stream, "refs.yaml"))
    assert result.complete, (result.skipped, result.notes)
    assert result.slos == import_documents([("inline", inline)]).slos


def test_an_unresolved_metric_source_ref_is_refused_by_name() -> None:
    result = import_documents([("refs.yaml#1", with_source_ref(pull_slo(), "elsewhere"))])
    assert result.slos == []
    assert "metricSource.metricSourceRef 'elsewhere': no DataSource document" in \
        result.skipped[0]


def test_a_datasource_that_is_not_prometheus_is_refused() -> None:
    stream = DATASOURCE.replace("Prometheus", "Datadog") + "---\n" + dump_documents(
        [with_source_ref(pull_slo(), "prom")])
    result = import_documents(load_documents(stream, "refs.yaml"))
    assert result.slos == []
    assert "'Datadog' is not Prometheus" in result.skipped[0]


ONLY_SLI = textwrap.dedent("""\
    apiVersion: openslo/v1
    kind: SLI
    metadata: {name: pulls}
    spec:
      ratioMetric:
        counter: true
        bad: {metricSource: {type: Prometheus, spec: {query: "sum(x)"}}}
        total: {metricSource: {type: Prometheus, spec: {query: "sum(y)"}}}
    ---
    apiVersion: openslo/v1
    kind: Service
    metadata: {name: registry}
    spec: {}
    """)


def test_input_without_slo_documents_says_so(tmp_path: Path) -> None:
    result = import_documents(load_documents(ONLY_SLI, "slis.yaml"))
    assert result.slos == [] and not result.complete
    assert "no SLO document in the input (found 1 SLI, 1 Service)" in result.skipped[0]
    path = tmp_path / "slis.yaml"
    path.write_text(ONLY_SLI)
    done = subprocess.run([sys.executable, "-m", "registry_slo", "openslo", "import",
                           str(path)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert "no SLO document in the input" in done.stderr
    assert "Traceback" not in done.stderr


def paths(value: Any, prefix: tuple[str | int, ...] = ()) -> Iterator[tuple[str | int, ...]]:
    """Every path inside a document, as ``set_path`` takes them."""
    items = (value.items() if isinstance(value, dict)
             else enumerate(value) if isinstance(value, list) else ())
    for key, child in items:
        path = (*prefix, key)
        yield path
        yield from paths(child, path)


JUNK = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner,
                                                                 max_size=3),
    max_leaves=6,
)
DOCUMENTS = [pull_slo(), lag_slo()]


@pytest.mark.fuzz
@fuzz_settings(200)
@given(which=st.sampled_from(range(len(DOCUMENTS))), pick=st.integers(min_value=0),
       junk=JUNK)
def test_any_value_anywhere_is_mapped_or_refused_never_raised(which: int, pick: int,
                                                              junk: Any) -> None:
    document = copy.deepcopy(DOCUMENTS[which])
    every = list(paths(document))
    set_path(document, every[pick % len(every)], junk)
    result = import_documents([("fuzz.yaml#1", document)])
    assert len(result.slos) + len(result.skipped) == 1, result
