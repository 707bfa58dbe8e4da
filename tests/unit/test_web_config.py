"""The web configuration file (exporter-toolkit's format): what it gives the listeners,
and clear errors naming the file and the key for everything it cannot be."""

from __future__ import annotations

import ssl
import subprocess
import sys
from pathlib import Path

import bcrypt
import pytest
import trustme
import yaml

from registry_slo.config import ConfigError, load_config, load_web_config

HASH = bcrypt.hashpw(b"pw", bcrypt.gensalt(4)).decode()


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("certs")
    ca = trustme.CA()
    ca.cert_pem.write_to_path(directory / "ca.pem")
    leaf = ca.issue_cert("127.0.0.1")
    leaf.cert_chain_pems[0].write_to_path(directory / "server.pem")
    leaf.private_key_pem.write_to_path(directory / "server.key")
    return directory


def _write(directory: Path, web: object, name: str = "web.yml") -> Path:
    path = directory / name
    path.write_text(yaml.safe_dump(web) if not isinstance(web, str) else web)
    return path


def test_the_toolkit_example_shape_with_relative_files(certs: Path) -> None:
    """File names are taken from the web configuration file's directory, as
    exporter-toolkit does."""
    path = _write(certs, {
        "tls_server_config": {
            "cert_file": "server.pem", "key_file": "server.key",
            "client_auth_type": "RequireAndVerifyClientCert", "client_ca_file": "ca.pem",
            "min_version": "TLS13",
        },
        "http_server_config": {"http2": True, "headers": {"X-Frame-Options": "deny"}},
        "basic_auth_users": {"alice": HASH, "bob": "$2y$10$" + "a" * 53},
        "rate_limit": {"interval": "1s", "burst": 20},
    })
    protection = load_web_config(path)
    assert protection.tls is not None
    assert protection.tls.cert_file == certs / "server.pem"
    assert protection.tls.client_auth == ssl.CERT_REQUIRED
    assert protection.tls.min_version == ssl.TLSVersion.TLSv1_3
    assert protection.users["alice"] == HASH.encode()
    assert protection.headers == {"X-Frame-Options": "deny"}
    assert protection.rate_limit is not None
    assert (protection.rate_limit.interval, protection.rate_limit.burst) == (1.0, 20)
    assert protection.scheme == "https"


@pytest.mark.parametrize(("web", "key", "says"), [
    ({"tls_server_config": {"cert_file": "server.pem"}}, "tls_server_config.key_file",
     "Field required"),
    ({"tls_server_config": {"cert_file": "server.pem", "key_file": "server.key",
                            "client_auth_type": "RequireAnyClientCert"}},
     "tls_server_config", "verifies every client certificate"),
    ({"tls_server_config": {"cert_file": "server.pem", "key_file": "server.key",
                            "client_auth_type": "RequireAndVerifyClientCert"}},
     "tls_server_config", "needs client_ca_file"),
    ({"tls_server_config": {"cert_file": "server.pem", "key_file": "server.key",
                            "client_ca_file": "ca.pem"}},
     "tls_server_config", "NoClientCert"),
    ({"tls_server_config": {"cert_file": "server.pem", "key_file": "server.key",
                            "min_version": "TLS13", "max_version": "TLS12"}},
     "tls_server_config", "newer than max_version"),
    ({"tls_server_config": {"cert_file": "server.pem", "key_file": "server.key",
                            "cipher_suites": ["TLS_AES_128_GCM_SHA256"]}},
     "tls_server_config", "cipher_suites is not supported"),
    ({"tls_server_config": {"cert_file": "server.pem", "key_file": "server.key",
                            "client_allowed_sans": ["a"]}},
     "tls_server_config", "client_allowed_sans is not supported"),
    ({"tls_server_config": {"cert_file": "server.pem", "key_file": "server.key",
                            "min_version": "TLS14"}},
     "tls_server_config.min_version", "TLS13"),
    ({"http_server_config": {"headers": {"Server": "x"}}}, "http_server_config.headers",
     "cannot be set"),
    ({"http_server_config": {"headers": {"X-Frame-Options": "allow"}}},
     "http_server_config.headers", "deny or sameorigin"),
    ({"basic_auth_users": {"alice": "plaintext-password"}}, "basic_auth_users",
     "not a bcrypt hash"),
    ({"basic_auth_users": {"a:b": HASH}}, "basic_auth_users", "no ':'"),
    ({"rate_limit": {"interval": "1s"}}, "rate_limit.burst", "Field required"),
    ({"basic_auth": {"alice": HASH}}, "basic_auth", "unknown key"),
])
def test_errors_name_the_file_and_the_key(
    certs: Path, web: object, key: str, says: str,
) -> None:
    path = _write(certs, web, "bad.yml")
    with pytest.raises(ConfigError) as caught:
        load_web_config(path)
    message = str(caught.value)
    assert f"{path}: {key}: " in message, message
    assert says in message, message
    assert "plaintext-password" not in message  # a secret, even when not a hash


def test_unusable_tls_files_and_files_that_are_not_configurations(
    certs: Path, tmp_path: Path,
) -> None:
    swapped = _write(certs, {"tls_server_config": {"cert_file": "server.key",
                                                   "key_file": "server.pem"}}, "swapped.yml")
    with pytest.raises(ConfigError, match=r"swapped.yml: tls_server_config: cannot use"):
        load_web_config(swapped)
    missing = _write(tmp_path, {"tls_server_config": {"cert_file": "nope.pem",
                                                      "key_file": "nope.key"}})
    with pytest.raises(ConfigError, match="No such file"):
        load_web_config(missing)
    for text, says in (("- a\n", "mapping"), ("a: [\n", "not valid YAML")):
        with pytest.raises(ConfigError, match=says):
            load_web_config(_write(tmp_path, text))
    with pytest.raises(ConfigError, match="cannot read"):
        load_web_config(tmp_path / "absent.yml")


def test_the_main_configuration_names_it_and_refuses_two_authorizations(
    tmp_path: Path,
) -> None:
    web = _write(tmp_path, {"basic_auth_users": {"alice": HASH}})
    token = tmp_path / "token"
    token.write_text("t\n")
    base = {"web_config_file": str(web),
            "ingest": {"notifications": {"endpoints": [{"name": "hook", "region": "r",
                                                         "format": "distribution"}]}},
            "regions": [{"name": "r", "url": "http://127.0.0.1:5000"}]}
    config = tmp_path / "config.yml"
    config.write_text(yaml.safe_dump(base))
    assert load_config(config).web_config_file == web
    base["ingest"]["notifications"]["bearer_token_file"] = str(token)  # type: ignore[index]
    config.write_text(yaml.safe_dump(base))
    with pytest.raises(ConfigError, match="one Authorization header"):
        load_config(config)


def test_validate_and_serve_exit_2_on_a_bad_web_configuration(tmp_path: Path) -> None:
    bad = _write(tmp_path, {"basic_auth_users": {"alice": "x"}})
    config = tmp_path / "config.yml"
    config.write_text(yaml.safe_dump({"web_config_file": str(bad)}))
    validate = subprocess.run(
        [sys.executable, "-m", "registry_slo", "validate", "--config", str(config)],
        capture_output=True, text=True, timeout=60)
    assert validate.returncode == 2
    assert f"{bad}: basic_auth_users" in validate.stderr
    config.write_text(yaml.safe_dump({}))
    serve = subprocess.run(
        [sys.executable, "-m", "registry_slo", "serve", "--config", str(config),
         "--web.config.file", str(bad)], capture_output=True, text=True, timeout=60)
    assert serve.returncode == 2
    assert f"{bad}: basic_auth_users" in serve.stderr
