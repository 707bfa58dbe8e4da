from __future__ import annotations

from pathlib import Path

import pytest

from registry_slo.config import BasicAuth, ConfigError, load_config

GOOD = """
listen: 127.0.0.1:9731
defaults:
  probe: {interval: 15s, timeout: 5s}
regions:
  - name: us-east
    url: http://127.0.0.1:5000
    probe: {repository: team/probe, blob_size: 64KiB}
  - name: eu-west
    url: https://registry.example.internal
    probe: {interval: 1m}
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "regions.yaml"
    path.write_text(text)
    return path


def test_good_config_with_defaults_merged(tmp_path: Path) -> None:
    settings = load_config(write(tmp_path, GOOD))
    us, eu = settings.regions
    assert us.probe.interval == 15 and us.probe.timeout == 5
    assert us.probe.blob_size == 64 * 1024 and us.probe.repository == "team/probe"
    assert eu.probe.interval == 60 and eu.probe.timeout == 5
    assert us.probe.effective_jitter == pytest.approx(1.5)
    assert us.probes == ("push", "pull", "auth")


def error_of(tmp_path: Path, text: str) -> str:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert str(path) in message, message
    return message


def test_unknown_key_is_named_with_file(tmp_path: Path) -> None:
    message = error_of(tmp_path, GOOD.replace("blob_size: 64KiB", "blob_size: 64KiB, colour: 1"))
    assert "regions[0].probe.colour: unknown key" in message


def test_bad_duration_names_key(tmp_path: Path) -> None:
    message = error_of(tmp_path, GOOD.replace("interval: 1m", "interval: soon"))
    assert "regions[1].probe.interval" in message and "invalid duration" in message


def test_timeout_longer_than_interval(tmp_path: Path) -> None:
    message = error_of(tmp_path, GOOD.replace("interval: 1m", "interval: 2s"))
    assert "regions[1].probe" in message and "timeout" in message


def test_duplicate_region_names(tmp_path: Path) -> None:
    message = error_of(tmp_path, GOOD.replace("name: eu-west", "name: us-east"))
    assert "used twice" in message


def test_duplicate_yaml_key_is_an_error(tmp_path: Path) -> None:
    message = error_of(tmp_path, "listen: a:1\nlisten: b:2\n")
    assert "given twice" in message and ":2:" in message


def test_yaml_syntax_error_has_line(tmp_path: Path) -> None:
    message = error_of(tmp_path, "regions:\n  - name: [unclosed\n")
    assert "not valid YAML" in message


def test_url_with_path_rejected(tmp_path: Path) -> None:
    message = error_of(tmp_path, GOOD.replace("http://127.0.0.1:5000", "http://h/v2/"))
    assert "regions[0].url" in message


def test_missing_password_file_named(tmp_path: Path) -> None:
    text = GOOD.replace(
        "probe: {interval: 1m}",
        "probe: {interval: 1m}\n    auth: {type: basic, username: u, password_file: /nope}",
    )
    message = error_of(tmp_path, text)
    assert "regions[1].auth: password_file: cannot read /nope" in message


def test_secret_read_from_file_and_never_printed(tmp_path: Path) -> None:
    secret = tmp_path / "pw"
    secret.write_text("hunter2\n")
    text = GOOD.replace(
        "probe: {interval: 1m}",
        f"probe: {{interval: 1m}}\n    auth: {{type: basic, username: u, password_file: {secret}}}",
    )
    settings = load_config(write(tmp_path, text))
    auth = settings.regions[1].auth
    assert isinstance(auth, BasicAuth)
    assert auth.password.get_secret_value() == "hunter2"
    assert "hunter2" not in repr(settings) and "hunter2" not in str(settings.model_dump())


def test_secret_from_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROBER_PW", "s3cret")
    text = GOOD.replace(
        "probe: {interval: 1m}",
        "probe: {interval: 1m}\n    auth: {type: basic, username: u, password_env: PROBER_PW}",
    )
    auth = load_config(write(tmp_path, text)).regions[1].auth
    assert isinstance(auth, BasicAuth) and auth.password.get_secret_value() == "s3cret"


def test_env_overrides_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REGISTRY_SLO_LISTEN", "127.0.0.1:9999")
    monkeypatch.setenv("REGISTRY_SLO_LOG_LEVEL", "debug")
    settings = load_config(write(tmp_path, GOOD))
    assert settings.listen == "127.0.0.1:9999" and settings.log_level == "debug"


def test_bad_env_override_is_reported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REGISTRY_SLO_LOG_LEVEL", "loud")
    message = error_of(tmp_path, GOOD)
    assert "log_level" in message and "REGISTRY_SLO_LOG_LEVEL" in message


def test_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "missing.yaml")
