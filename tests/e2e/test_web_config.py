"""``serve`` behind a web configuration file, with the real clients users run.

The exporter serves HTTPS with a certificate from a test CA, verifies client
certificates when given (``VerifyClientCertIfGiven``), requires Basic users and adds
response headers, on both listeners. Then:

- a real Prometheus scrapes it over TLS with a client certificate and Basic auth
  (``up`` is 1), and fails with a wrong password or without trusting the CA (``up`` 0);
- ``curl`` with the client certificate and the user gets 200 and the headers; without
  the user, 401; with a certificate from another CA or over plain HTTP, no answer;
- a real ``docker-registry`` sends its notifications over TLS (trusting the CA through
  ``SSL_CERT_FILE``) with a Basic ``Authorization`` header from its endpoint's
  ``headers``, and the exporter counts the pushed images' events in the SLO.
"""

from __future__ import annotations

import base64
import ssl
import subprocess
import time
from pathlib import Path

import bcrypt
import httpx
import pytest
import trustme
import yaml
from conftest import require_binary
from harness import push_image
from harness.prometheus import LocalPrometheus, scrape_job
from harness.serve import ServeProcess

from registry_slo.devenv import LocalRegistry, free_port
from registry_slo.vocabulary import OPERATIONS

DEADLINE = 60.0
SCRAPER, SCRAPER_PASSWORD = "prometheus", "scrape-pw"
REGISTRY, REGISTRY_PASSWORD = "registry", "notify-pw"


def _pems(cert: trustme.LeafCert, directory: Path, name: str) -> tuple[Path, Path]:
    cert_file, key_file = directory / f"{name}.pem", directory / f"{name}.key"
    cert.cert_chain_pems[0].write_to_path(cert_file)
    cert.private_key_pem.write_to_path(key_file)
    return cert_file, key_file


def _curl(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([require_binary("curl"), "-sS", "--max-time", "10", *args],
                          capture_output=True, text=True, timeout=30)


def test_prometheus_curl_and_a_registry_through_tls_and_basic_auth(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    require_binary("docker-registry")
    ca = trustme.CA()
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(ca_file)
    _pems(ca.issue_cert("127.0.0.1"), tmp_path, "server")
    client_cert, client_key = _pems(ca.issue_cert("prometheus.example"), tmp_path, "client")
    stranger_cert, stranger_key = _pems(
        trustme.CA().issue_cert("prometheus.example"), tmp_path, "stranger")
    other_ca = tmp_path / "other-ca.pem"
    trustme.CA().cert_pem.write_to_path(other_ca)
    web = tmp_path / "web.yml"
    web.write_text(yaml.safe_dump({
        "tls_server_config": {  # relative to web.yml, as exporter-toolkit reads them
            "cert_file": "server.pem", "key_file": "server.key",
            "client_auth_type": "VerifyClientCertIfGiven", "client_ca_file": "ca.pem"},
        "http_server_config": {"headers": {"X-Content-Type-Options": "nosniff",
                                           "Strict-Transport-Security": "max-age=300"}},
        "basic_auth_users": {
            SCRAPER: bcrypt.hashpw(SCRAPER_PASSWORD.encode(), bcrypt.gensalt(10)).decode(),
            REGISTRY: bcrypt.hashpw(REGISTRY_PASSWORD.encode(), bcrypt.gensalt(10)).decode(),
        },
    }))

    hook_port = free_port()
    hook = f"https://127.0.0.1:{hook_port}/notifications/events"
    registry_auth = base64.b64encode(f"{REGISTRY}:{REGISTRY_PASSWORD}".encode()).decode()
    notifications = {"endpoints": [{
        "name": "exporter", "url": hook, "timeout": "2s", "threshold": 1,
        "backoff": "200ms", "headers": {"Authorization": [f"Basic {registry_auth}"]}}]}
    monkeypatch.setenv("SSL_CERT_FILE", str(ca_file))  # Go's trust store, for the registry
    with LocalRegistry(extra_config={"notifications": notifications}) as registry:
        listen = f"127.0.0.1:{free_port()}"
        config = tmp_path / "regions.yaml"
        config.write_text(yaml.safe_dump({
            "listen": listen,
            "log_format": "json",
            "state_dir": str(tmp_path / "state"),
            "web_config_file": str(web),
            "regions": [{"name": "r", "url": registry.url,
                         "probe": {"enabled": ["auth"], "interval": "1m"}}],
            "ingest": {"notifications": {
                "listen": f"127.0.0.1:{hook_port}",
                "endpoints": [{"name": "events", "region": "r", "format": "distribution"}]}},
            "slos": [{"name": "registry-events", "objective": 99,
                      "sli": {"kind": "traffic_success", "operations": list(OPERATIONS),
                              "sources": ["events"]}}],
        }))
        trusted = ssl.create_default_context(cafile=ca_file)
        trusted.load_cert_chain(client_cert, client_key)
        serve = ServeProcess(config, tmp_path / "exporter.log", scheme="https",
                             client={"verify": trusted, "auth": (SCRAPER, SCRAPER_PASSWORD)})
        try:
            # The webhook listener starts after the main one answers.
            health = hook.replace("/notifications/events", "/healthz")
            deadline = time.monotonic() + DEADLINE
            while True:
                try:
                    if httpx.get(health, verify=trusted, timeout=1,
                                 auth=(REGISTRY, REGISTRY_PASSWORD)).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert time.monotonic() < deadline, serve.tail()
                time.sleep(0.1)
            _check_curl(serve.base, hook, ca_file, (client_cert, client_key),
                        (stranger_cert, stranger_key))
            _check_notifications(serve, registry.url)
            _check_prometheus(listen, ca_file, other_ca, (client_cert, client_key), tmp_path)
        finally:
            serve.stop()


def _check_curl(base: str, hook: str, ca_file: Path, client: tuple[Path, Path],
                stranger: tuple[Path, Path]) -> None:
    tls = ["--cacert", str(ca_file)]
    mine = ["--cert", str(client[0]), "--key", str(client[1])]
    user = ["-u", f"{SCRAPER}:{SCRAPER_PASSWORD}"]
    answer = _curl(*tls, *mine, *user, "-D", "-", f"{base}/metrics")
    assert answer.returncode == 0, answer.stderr
    head = answer.stdout.split("\r\n\r\n", 1)[0].lower()
    assert head.startswith("http/1.1 200"), head
    assert "x-content-type-options: nosniff" in head
    assert "strict-transport-security: max-age=300" in head
    assert "registry_slo_" in answer.stdout
    # No certificate is fine (VerifyClientCertIfGiven), the user is still required.
    assert _curl(*tls, *user, "-o", "/dev/null", "-w", "%{http_code}",
                 f"{base}/api/v1/slo").stdout == "200"
    for path in ("/metrics", "/", "/api/v1/slo", "/healthz"):
        refused = _curl(*tls, "-D", "-", "-o", "/dev/null", f"{base}{path}")
        assert refused.stdout.lower().startswith("http/1.1 401"), (path, refused.stdout)
        assert 'www-authenticate: basic realm="registry-slo"' in refused.stdout.lower()
    wrong = _curl(*tls, "-u", f"{SCRAPER}:nope", "-o", "/dev/null", "-w", "%{http_code}",
                  f"{base}/metrics")
    assert wrong.stdout == "401"
    # A certificate from another CA: the handshake fails, no HTTP answer at all.
    foreign = _curl(*tls, "--cert", str(stranger[0]), "--key", str(stranger[1]), *user,
                    f"{base}/metrics")
    assert foreign.returncode != 0
    assert not foreign.stdout
    # Plain HTTP to the TLS port, and HTTPS without trusting the CA.
    assert _curl(*user, base.replace("https://", "http://") + "/metrics").returncode != 0
    assert _curl(*user, f"{base}/metrics").returncode == 60  # peer certificate not trusted
    # The webhook listener is behind the same configuration.
    posted = _curl(*tls, "-X", "POST", "-H", "Content-Type: application/json",
                   "--data", "{}", "-o", "/dev/null", "-w", "%{http_code}", hook)
    assert posted.stdout == "401"


def _period_events(serve: ServeProcess) -> float:
    api = serve.get("/api/v1/slo").json()
    (entry,) = [s for s in api["slos"] if s["slo"] == "registry-events"]
    return float(entry["windows"][-1]["events"])


def _check_notifications(serve: ServeProcess, registry_url: str) -> None:
    with httpx.Client(trust_env=False, timeout=10) as client:
        for i in range(3):
            push_image(client, registry_url, "team/app", f"v{i}", layer=f"layer {i}\n".encode())
    deadline = time.monotonic() + DEADLINE
    # Each push is at least its manifest's event (the blob uploads count too).
    while _period_events(serve) < 3:
        assert time.monotonic() < deadline, serve.tail()
        time.sleep(0.2)
    received = serve.get("/metrics").text
    assert 'registry_slo_ingest_notification_requests_total{' in received, received[-2000:]


def _check_prometheus(listen: str, ca_file: Path, other_ca: Path,
                      client: tuple[Path, Path], tmp_path: Path) -> None:
    tls = {"ca_file": str(ca_file), "cert_file": str(client[0]), "key_file": str(client[1])}
    right = {"username": SCRAPER, "password": SCRAPER_PASSWORD}
    jobs = [
        scrape_job("tls-basic", [listen], scheme="https", tls_config=tls, basic_auth=right),
        scrape_job("wrong-password", [listen], scheme="https", tls_config=tls,
                   basic_auth={"username": SCRAPER, "password": "nope"}),
        scrape_job("untrusted", [listen], scheme="https",
                   tls_config={**tls, "ca_file": str(other_ca)}, basic_auth=right),
        scrape_job("plain-http", [listen], basic_auth=right),
    ]
    expected = {"tls-basic": 1.0, "wrong-password": 0.0, "untrusted": 0.0, "plain-http": 0.0}
    with LocalPrometheus(scrape_configs=jobs, scrape_interval=1,
                         log_path=tmp_path / "prometheus.log") as prom:
        deadline = time.monotonic() + DEADLINE
        while True:
            up = {s.labels["job"]: s.value for s in prom.query("up")}
            if up == expected:
                break
            assert time.monotonic() < deadline, up
            time.sleep(0.5)
        scraped = prom.query('count({job="tls-basic", __name__=~"registry_slo_.+"})')
        assert scraped
        assert scraped[0].value > 10
