"""A careless or hostile configuration ends in a ``ConfigError`` naming the file and the
key — never a traceback, never accepted to crash ``serve`` later."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from harness.fuzzing import fuzz_settings
from hypothesis import given
from hypothesis import strategies as st

from registry_slo.config import ConfigError, load_config

REGION = 'regions: [{name: a, url: "http://127.0.0.1:5000"'
HUGE = "1" + "0" * 400


def error_of(tmp_path: Path, text: str | bytes) -> str:
    path = tmp_path / "regions.yaml"
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert str(path) in message
    return message


@pytest.mark.parametrize(("text", "expected"), [
    (f"{REGION}, probe: {{interval: {HUGE}s}}}}]", "regions[0].probe.interval:"),
    (f"{REGION}, probe: {{interval: {HUGE}}}}}]", "regions[0].probe.interval:"),
    (f"{REGION}, probe: {{interval: .inf}}}}]", "not a finite duration"),
    (f"{REGION}, probe: {{jitter: .nan}}}}]", "regions[0].probe.jitter: nan is not a finite"),
    (f"{REGION}, probe: {{blob_size: {HUGE}B}}}}]", "regions[0].probe.blob_size:"),
    (f"{REGION}, probe: {{timeout: 99999d}}}}]", "longer than 3650d"),
    (f"{REGION}}}]\nslos: [{{name: s, sli: {{kind: probe_success, probe: pull}}, "
     "objective: 99, period: .inf}]", "slos[0].period:"),
    ('regions: [{name: "a\\n", url: "http://127.0.0.1:5000"}]', "regions[0].name:"),
    (f'{REGION}, probe: {{repository: "team/app\\n"}}}}]', "regions[0].probe.repository:"),
    ('regions: [{name: a, url: "http://u:p@127.0.0.1:5000"}]', "credentials do not belong"),
    ('regions: [{name: a, url: "http://127.0.0.1:5000/#x"}]', "#fragment"),
    ('regions: [{name: a, url: "http://127.0 .0.1:5000"}]', "not a host name"),
    ('regions: [{name: a, url: "http://127.0.0.1:99999"}]', "port"),
    (f"{REGION}, auth: {{type: basic, username: u, password: x, password_env: HOME}}}}]",
     "secrets are not written in the configuration"),
    (f"{REGION}, auth: {{type: basic, username: u, password_file: /dev/zero}}}}]",
     "holds more than 65536 bytes"),
    ('regions: [{name: a, url: "http://127.0.0.1:5000", replicates_from: b},'
     ' {name: b, url: "http://127.0.0.1:5001", pull_through_cache_of: a}]',
     "a cycle, a -> b -> a"),
    ('{1: 2, regions: []}', "key '1' is not a string"),
    ("{[1]: 2}", "a key is a list or mapping"),
    ("a: " + "[" * 100_000, "nested too deeply"),
])
def test_a_hostile_value_is_a_config_error_naming_the_key(
    tmp_path: Path, text: str, expected: str
) -> None:
    assert expected in error_of(tmp_path, text)


def test_binary_and_utf16_files_are_refused_as_text(tmp_path: Path) -> None:
    assert "not UTF-8 text" in error_of(tmp_path, b"\xff\xfe\x00\x01binary")
    assert "not UTF-8 text" in error_of(tmp_path, "regions: []\n".encode("utf-16"))


def test_ipv6_hosts_and_a_mirror_chain_are_fine(tmp_path: Path) -> None:
    path = tmp_path / "regions.yaml"
    path.write_text(
        'regions: [{name: a, url: "http://[::1]:5000"},'
        ' {name: b, url: "http://127.0.0.1:5001", replicates_from: a},'
        ' {name: c, url: "http://127.0.0.1:5002", replicates_from: b}]'
    )
    assert [r.name for r in load_config(path).regions] == ["a", "b", "c"]


def test_validate_exits_2_with_one_line_and_no_traceback(tmp_path: Path) -> None:
    path = tmp_path / "regions.yaml"
    path.write_text(f"{REGION}, probe: {{interval: {HUGE}s}}}}]")
    cli = Path(sys.executable).parent / "registry-slo"
    done = subprocess.run([str(cli), "validate", "--config", str(path)],
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr and "regions[0].probe.interval" in done.stderr


_SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12), st.sampled_from(["30s", "1m", "1MiB", HUGE, "-1s", ".inf", "a\n"]),
)
_VALUES = st.recursive(_SCALARS, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=8), inner, max_size=3),
), max_leaves=8)
_PATHS = [
    ("regions", 0, "probe", "interval"), ("regions", 0, "probe", "timeout"),
    ("regions", 0, "probe", "jitter"), ("regions", 0, "probe", "blob_size"),
    ("regions", 0, "probe", "repository"), ("regions", 0, "url"), ("regions", 0, "name"),
    ("regions", 0, "replicates_from"), ("listen",), ("state_dir",),
    ("slos", 0, "period"), ("slos", 0, "objective"), ("slos", 0, "sli"),
    ("prometheus", "scrape_interval"), ("prometheus", "evaluation_interval"),
    ("alerting",), ("ingest",),
]


def _config() -> dict[str, Any]:
    return {
        "regions": [{"name": "a", "url": "http://127.0.0.1:5000", "probe": {}}],
        "slos": [{"name": "s", "sli": {"kind": "probe_success", "probe": "pull"},
                  "objective": 99}],
        "prometheus": {},
    }


@pytest.mark.fuzz
@fuzz_settings(default=300)
@given(path=st.sampled_from(_PATHS), value=_VALUES)
def test_any_value_anywhere_loads_or_is_a_config_error(
    tmp_path_factory: pytest.TempPathFactory, path: tuple[str | int, ...], value: Any
) -> None:
    config: Any = _config()
    node = config
    for key in path[:-1]:
        node = node[key] if not isinstance(node, dict) or key in node else node.setdefault(key, {})
    node[path[-1]] = value
    file = tmp_path_factory.mktemp("cfg") / "regions.yaml"
    file.write_text(yaml.safe_dump(config))
    message = ""
    try:
        load_config(file)
    except ConfigError as exc:
        message = str(exc)
    assert not message or str(file) in message
