"""The harness itself, proven against the real distribution registry and skopeo."""

from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
import json
import shutil
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from registry_slo.devenv import (
    LocalRegistry,
    RegistryStartError,
    free_port,
    registry_binary,
)
from registry_slo.devenv import registry as registry_module

from . import (
    OCI_MANIFEST,
    PROBER,
    READER,
    FaultMode,
    FaultProxy,
    TokenRegistry,
    TokenServer,
    binary_path,
    digest_of,
    in_ci,
    missing_binary_message,
    push_blob,
    push_image,
)
from .immutable import immutable
from .tokenserver import parse_scope

FaultProxyFactory = Callable[[LocalRegistry | str], FaultProxy]


def _require(name: str) -> str:
    path = binary_path(name)
    if path is None:
        if in_ci():
            pytest.fail(missing_binary_message(name))
        pytest.skip(missing_binary_message(name))
    return path


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    with httpx.Client(trust_env=False, timeout=10.0) as c:
        yield c


def _bearer_challenge(response: httpx.Response) -> dict[str, str]:
    scheme, _, params = response.headers["WWW-Authenticate"].partition(" ")
    assert scheme == "Bearer"
    out: dict[str, str] = {}
    for part in params.split('",'):
        key, _, value = part.partition("=")
        out[key.strip()] = value.strip().strip('"')
    return out


def _token(
    client: httpx.Client, challenge: dict[str, str], auth: tuple[str, str], scope: str
) -> dict[str, Any]:
    response = client.get(
        challenge["realm"], params={"service": challenge["service"], "scope": scope}, auth=auth
    )
    response.raise_for_status()
    body: dict[str, Any] = response.json()
    return body


# -- LocalRegistry -------------------------------------------------------------------------


def test_registry_answers_v2(registry: LocalRegistry, client: httpx.Client) -> None:
    response = client.get(f"{registry.url}/v2/")
    assert response.status_code == 200
    assert response.headers["Docker-Distribution-Api-Version"] == "registry/2.0"
    assert registry.url == f"http://{registry.host}"
    assert registry.host.startswith("127.0.0.1:")
    config = registry.config_path.read_text()
    assert f"addr: {registry.host}" in config


def test_registry_restart_keeps_port_and_storage(
    registry: LocalRegistry, client: httpx.Client
) -> None:
    digest = push_blob(client, registry.url, "registry-slo/restart", b"persist me")
    port, pid = registry.port, registry.pid
    registry.restart()
    assert registry.port == port
    assert registry.pid != pid
    response = client.get(f"{registry.url}/v2/registry-slo/restart/blobs/{digest}")
    assert response.content == b"persist me"


def test_registry_kill_then_start_recovers(registry: LocalRegistry, client: httpx.Client) -> None:
    registry.kill()
    assert not registry.running
    with pytest.raises(httpx.ConnectError):
        client.get(f"{registry.url}/v2/")
    registry.start()
    assert client.get(f"{registry.url}/v2/").status_code == 200


def test_stop_removes_workdir_unless_kept(tmp_path: Path) -> None:
    _require("docker-registry")
    reg = LocalRegistry().start()
    workdir = reg.workdir
    reg.stop()
    assert not workdir.exists()
    kept = LocalRegistry(keep_workdir=True).start()
    kept_dir = kept.workdir
    kept.stop()
    try:
        assert (kept_dir / "config.yml").exists()
    finally:
        shutil.rmtree(kept_dir)
    LocalRegistry(storage_dir=tmp_path / "s").start().stop()
    assert (tmp_path / "s").is_dir()


def test_htpasswd_registry(htpasswd_registry: LocalRegistry, client: httpx.Client) -> None:
    url = f"{htpasswd_registry.url}/v2/"
    anonymous = client.get(url)
    assert anonymous.status_code == 401
    assert anonymous.headers["WWW-Authenticate"].startswith("Basic realm=")
    assert client.get(url, auth=(PROBER.username, "wrong")).status_code == 401
    assert client.get(url, auth=PROBER.as_tuple()).status_code == 200
    assert client.get(url, auth=READER.as_tuple()).status_code == 200
    htpasswd = (htpasswd_registry.workdir / "htpasswd").read_text()
    assert f"{PROBER.username}:$2b$" in htpasswd


def test_nodelete_registry_refuses_delete(
    registry: LocalRegistry, nodelete_registry: LocalRegistry, client: httpx.Client
) -> None:
    for reg, expected in ((registry, 202), (nodelete_registry, 405)):
        image = push_image(client, reg.url, "registry-slo/del")
        response = client.delete(f"{reg.url}/v2/registry-slo/del/manifests/{image.manifest_digest}")
        assert response.status_code == expected, response.text
    body = response.json()
    assert body["errors"][0]["code"] == "UNSUPPORTED"


def test_stopped_registry_url_refuses(stopped_registry_url: str, client: httpx.Client) -> None:
    with pytest.raises(httpx.ConnectError):
        client.get(f"{stopped_registry_url}/v2/")


def test_debug_metrics_and_json_logs(tmp_path: Path, client: httpx.Client) -> None:
    _require("docker-registry")
    log_path, access = tmp_path / "logs" / "registry.json", tmp_path / "logs" / "access.log"
    with LocalRegistry(debug_metrics=True, log_path=log_path, access_log_path=access) as reg:
        push_blob(client, reg.url, "registry-slo/metrics", b"x" * 10)
        metrics = client.get(f"{reg.debug_url}/metrics").text
        assert "registry_http_requests_total" in metrics
        assert "registry_storage_action_seconds" in metrics
        debug_vars = client.get(f"{reg.debug_url}/debug/vars").json()
        assert "registry" in debug_vars
    records = [json.loads(line) for line in log_path.read_text().splitlines()]
    completed = [r for r in records if r.get("msg") == "response completed"]
    assert any(r["http.request.method"] == "PUT" for r in completed)
    assert {"time", "level", "http.response.status", "http.request.uri"} <= set(completed[-1])
    assert '"PUT /v2/registry-slo/metrics/blobs/uploads/' in access.read_text()
    assert log_path.exists()  # kept: it was outside the work dir


def test_start_failure_reports_log_tail() -> None:
    _require("docker-registry")
    reg = LocalRegistry(extra_config={"storage": {"nosuchdriver": {}}})
    with pytest.raises(RegistryStartError, match="log tail"):
        reg.start()
    reg.stop()


def test_start_retries_after_losing_bind_race(monkeypatch: pytest.MonkeyPatch) -> None:
    _require("docker-registry")
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        ports = iter([taken.getsockname()[1]])

        def fake_free_port(host: str = "127.0.0.1") -> int:
            return next(ports, None) or free_port(host)

        monkeypatch.setattr(registry_module, "free_port", fake_free_port)
        with LocalRegistry() as reg:
            assert reg.port != taken.getsockname()[1]
            assert httpx.get(f"{reg.url}/v2/").status_code == 200


def test_registry_binary_lookup(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("REGISTRY_SLO_REGISTRY_BIN", str(tmp_path / "missing"))
    with pytest.raises(RuntimeError, match="REGISTRY_SLO_REGISTRY_BIN"):
        registry_binary()
    monkeypatch.delenv("REGISTRY_SLO_REGISTRY_BIN")
    monkeypatch.setattr(shutil, "which", lambda _name: None)
    monkeypatch.setattr(registry_module, "_DEFAULT_BINARY", tmp_path / "missing")
    with pytest.raises(RuntimeError, match="Debian package 'docker-registry'"):
        registry_binary()


def _self_signed_server_cert(directory: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    certfile, keyfile = directory / "tls.crt", directory / "tls.key"
    certfile.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    keyfile.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
    )
    return certfile, keyfile


def test_tls_registry(tmp_path: Path) -> None:
    _require("docker-registry")
    certfile, keyfile = _self_signed_server_cert(tmp_path)
    with LocalRegistry(tls=(certfile, keyfile)) as reg:
        assert reg.url.startswith("https://127.0.0.1:")
        context = ssl.create_default_context(cafile=str(certfile))
        with httpx.Client(verify=context, trust_env=False) as c:
            assert c.get(f"{reg.url}/v2/").status_code == 200


def test_pull_through_cache(registry: LocalRegistry, client: httpx.Client) -> None:
    image = push_image(client, registry.url, "registry-slo/upstream")
    with LocalRegistry(proxy_remote_url=registry.url) as cache:
        manifest = client.get(
            f"{cache.url}/v2/registry-slo/upstream/manifests/latest",
            headers={"Accept": OCI_MANIFEST},
        )
        assert manifest.status_code == 200
        assert manifest.headers["Docker-Content-Digest"] == image.manifest_digest
        blob = client.get(f"{cache.url}/v2/registry-slo/upstream/blobs/{image.layer_digest}")
        assert blob.content == image.layer
        push = client.post(f"{cache.url}/v2/registry-slo/upstream/blobs/uploads/")
        assert push.status_code == 405


def test_notifications_delivered(client: httpx.Client) -> None:
    _require("docker-registry")
    received: list[tuple[str, dict[str, Any]]] = []

    class Receiver(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers["Content-Length"])
            received.append((self.headers["Content-Type"], json.loads(self.rfile.read(length))))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        endpoint = f"http://127.0.0.1:{server.server_address[1]}/events"
        with LocalRegistry(notifications=[endpoint]) as reg:
            image = push_image(client, reg.url, "registry-slo/events")
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                events = [e for _, env in received for e in env["events"]]
                if any(e["target"].get("digest") == image.manifest_digest for e in events):
                    break
                time.sleep(0.05)
    finally:
        server.shutdown()
        server.server_close()
    assert {ct for ct, _ in received} == {"application/vnd.docker.distribution.events.v1+json"}
    manifest_events = [
        e for e in events if e["target"].get("mediaType") == OCI_MANIFEST and e["action"] == "push"
    ]
    assert manifest_events
    assert manifest_events[0]["target"]["repository"] == "registry-slo/events"
    assert manifest_events[0]["target"]["tag"] == "latest"
    assert manifest_events[0]["id"]


# -- token server --------------------------------------------------------------------------


def test_parse_scope() -> None:
    assert parse_scope("repository:a/b:pull,push") == ("repository", "a/b", ["pull", "push"])
    assert parse_scope("repository:host:5000/a:pull") == ("repository", "host:5000/a", ["pull"])
    assert parse_scope("registry:catalog:*") == ("registry", "catalog", ["*"])
    with pytest.raises(ValueError):
        parse_scope("repository")


def test_token_flow(token_registry: TokenRegistry, client: httpx.Client) -> None:
    repo = "registry-slo/token"
    challenged = client.get(f"{token_registry.url}/v2/")
    assert challenged.status_code == 401
    challenge = _bearer_challenge(challenged)
    assert challenge == {"realm": token_registry.realm, "service": token_registry.service}

    before = token_registry.token_server.token_requests
    body = _token(client, challenge, PROBER.as_tuple(), f"repository:{repo}:pull,push")
    assert token_registry.token_server.token_requests == before + 1
    assert set(body) == {"token", "access_token", "expires_in", "issued_at"}
    assert body["token"] == body["access_token"]
    header = jwt.get_unverified_header(body["token"])
    assert header["alg"] == "ES256"
    assert "x5c" in header
    claims = jwt.decode(body["token"], options={"verify_signature": False})
    assert claims["aud"] == token_registry.service
    assert claims["access"] == [{"type": "repository", "name": repo, "actions": ["pull", "push"]}]

    bearer = {"Authorization": f"Bearer {body['token']}"}
    assert client.get(f"{token_registry.url}/v2/", headers=bearer).status_code == 200
    with httpx.Client(trust_env=False, headers=bearer) as authed:
        digest = push_blob(authed, token_registry.url, repo, b"token pushed")
        blob = authed.get(f"{token_registry.url}/v2/{repo}/blobs/{digest}")
        assert blob.content == b"token pushed"


def test_token_pull_only_user_cannot_push(
    token_registry: TokenRegistry, client: httpx.Client
) -> None:
    repo = "registry-slo/readonly"
    challenge = {"realm": token_registry.realm, "service": token_registry.service}
    body = _token(client, challenge, READER.as_tuple(), f"repository:{repo}:pull,push")
    claims = jwt.decode(body["token"], options={"verify_signature": False})
    assert claims["access"] == [{"type": "repository", "name": repo, "actions": ["pull"]}]
    response = client.post(
        f"{token_registry.url}/v2/{repo}/blobs/uploads/",
        headers={"Authorization": f"Bearer {body['token']}"},
    )
    assert response.status_code == 401
    assert 'error="insufficient_scope"' in response.headers["WWW-Authenticate"]
    assert response.json()["errors"][0]["code"] == "UNAUTHORIZED"


def test_token_denied_scope_and_bad_password(
    token_registry: TokenRegistry, client: httpx.Client
) -> None:
    challenge = {"realm": token_registry.realm, "service": token_registry.service}
    body = _token(client, challenge, PROBER.as_tuple(), "repository:elsewhere/x:pull,push")
    claims = jwt.decode(body["token"], options={"verify_signature": False})
    assert claims["access"] == [{"type": "repository", "name": "elsewhere/x", "actions": []}]
    bad = client.get(
        token_registry.realm,
        params={"service": token_registry.service, "scope": "repository:registry-slo/x:pull"},
        auth=(PROBER.username, "wrong"),
    )
    assert bad.status_code == 401
    anonymous = client.get(token_registry.realm, params={"service": token_registry.service})
    assert anonymous.status_code == 401


def test_token_expiry(token_registry: TokenRegistry, client: httpx.Client) -> None:
    server = token_registry.token_server
    challenge = {"realm": token_registry.realm, "service": token_registry.service}
    server.expires_in = 5
    short = _token(client, challenge, PROBER.as_tuple(), "repository:registry-slo/e:pull")
    assert short["expires_in"] == 5
    url = f"{token_registry.url}/v2/registry-slo/e/tags/list"
    ok = client.get(url, headers={"Authorization": f"Bearer {short['token']}"})
    assert ok.status_code == 404  # authorized; the repository does not exist
    # distribution 2.8 allows 60 s of clock-skew leeway past ``exp``.
    server.exp_offset = -120
    expired = _token(client, challenge, PROBER.as_tuple(), "repository:registry-slo/e:pull")
    refused = client.get(url, headers={"Authorization": f"Bearer {expired['token']}"})
    assert refused.status_code == 401
    assert 'error="invalid_token"' in refused.headers["WWW-Authenticate"]


def test_token_from_untrusted_key_rejected(
    token_registry: TokenRegistry, client: httpx.Client
) -> None:
    with TokenServer(
        {PROBER.username: PROBER.password},
        {PROBER.username: {"*": ["*"]}},
        service=token_registry.service,
        issuer=token_registry.token_server.issuer,
    ) as rogue:
        token, _ = rogue.issue(PROBER.username, rogue.service, ["repository:registry-slo/r:pull"])
    response = client.get(
        f"{token_registry.url}/v2/registry-slo/r/tags/list",
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status_code == 401


# -- fault proxy ---------------------------------------------------------------------------


def test_proxy_passthrough_push_and_pull(
    registry: LocalRegistry, fault_proxy: FaultProxyFactory, client: httpx.Client
) -> None:
    proxy = fault_proxy(registry)
    repo = "registry-slo/proxied"
    started = client.post(f"{proxy.url}/v2/{repo}/blobs/uploads/")
    assert started.status_code == 202
    assert started.headers["Location"].startswith(f"{proxy.url}/v2/{repo}/blobs/uploads/")
    image = push_image(client, proxy.url, repo)
    head = client.head(f"{proxy.url}/v2/{repo}/manifests/latest", headers={"Accept": OCI_MANIFEST})
    assert head.status_code == 200
    assert head.headers["Docker-Content-Digest"] == image.manifest_digest
    assert int(head.headers["Content-Length"]) == len(image.manifest)
    blob = client.get(f"{proxy.url}/v2/{repo}/blobs/{image.layer_digest}")
    assert blob.content == image.layer
    direct = client.get(f"{registry.url}/v2/{repo}/blobs/{image.layer_digest}")
    assert direct.content == image.layer
    # One client connection, kept alive across every request.
    assert proxy.connections == 1
    assert proxy.requests == len(proxy.seen) == 8
    assert proxy.faults_injected == 0


def test_proxy_forwards_chunked_responses(
    registry: LocalRegistry, fault_proxy: FaultProxyFactory, client: httpx.Client
) -> None:
    digest = push_blob(client, registry.url, "registry-slo/source", b"mounted")
    names = [f"registry-slo/chunked-framing-check-repository-{i:04d}" for i in range(110)]
    for name in names:
        mounted = client.post(
            f"{registry.url}/v2/{name}/blobs/uploads/",
            params={"mount": digest, "from": "registry-slo/source"},
        )
        assert mounted.status_code == 201
    proxy = fault_proxy(registry)
    catalog = client.get(f"{proxy.url}/v2/_catalog", params={"n": 1000})
    assert catalog.headers["Transfer-Encoding"] == "chunked"
    assert set(names) <= set(catalog.json()["repositories"])


def test_proxy_stall(
    registry: LocalRegistry, fault_proxy: FaultProxyFactory, client: httpx.Client
) -> None:
    proxy = fault_proxy(registry)
    proxy.set_mode("stall")
    started = time.monotonic()
    with pytest.raises(httpx.ReadTimeout):
        client.get(f"{proxy.url}/v2/", timeout=0.5)
    assert time.monotonic() - started >= 0.5
    proxy.passthrough()
    assert client.get(f"{proxy.url}/v2/").status_code == 200
    assert proxy.faults_injected == 1


async def test_proxy_stall_from_async_test(
    registry: LocalRegistry, fault_proxy: FaultProxyFactory
) -> None:
    proxy = fault_proxy(registry)
    proxy.set_mode(FaultMode.STALL)
    async with httpx.AsyncClient(trust_env=False, timeout=0.3) as aclient:
        with pytest.raises(httpx.ReadTimeout):
            await aclient.get(f"{proxy.url}/v2/")
        proxy.passthrough()
        assert (await aclient.get(f"{proxy.url}/v2/")).status_code == 200


def test_proxy_reset(
    registry: LocalRegistry, fault_proxy: FaultProxyFactory, client: httpx.Client
) -> None:
    proxy = fault_proxy(registry)
    proxy.set_mode("reset")
    with pytest.raises((httpx.ReadError, httpx.RemoteProtocolError)) as info:
        client.get(f"{proxy.url}/v2/")
    assert isinstance(info.value.__context__ or info.value.__cause__, ConnectionResetError) or (
        "reset" in str(info.value).lower()
    )
    proxy.passthrough()
    assert client.get(f"{proxy.url}/v2/").status_code == 200


def test_proxy_status(
    registry: LocalRegistry, fault_proxy: FaultProxyFactory, client: httpx.Client
) -> None:
    proxy = fault_proxy(registry)
    proxy.set_mode("status", status=429, retry_after=7)
    limited = client.get(f"{proxy.url}/v2/")
    assert limited.status_code == 429
    assert limited.headers["Retry-After"] == "7"
    assert limited.json()["errors"][0]["code"] == "TOOMANYREQUESTS"
    proxy.set_mode("status", status=500, error_code="UNKNOWN", message="boom")
    failed = client.get(f"{proxy.url}/v2/")
    assert failed.status_code == 500
    assert failed.json() == {"errors": [{"code": "UNKNOWN", "message": "boom"}]}
    head = client.head(f"{proxy.url}/v2/x/manifests/latest")
    assert head.status_code == 500
    assert head.content == b""
    # Same client connection survives fault answers (keep-alive).
    assert proxy.connections == 1


def test_proxy_path_method_and_times_filters(
    registry: LocalRegistry, fault_proxy: FaultProxyFactory, client: httpx.Client
) -> None:
    digest = push_blob(client, registry.url, "registry-slo/filter", b"filtered")
    proxy = fault_proxy(registry)
    blob_url = f"{proxy.url}/v2/registry-slo/filter/blobs/{digest}"
    proxy.set_mode("status", status=503, path="/blobs/")
    assert client.get(f"{proxy.url}/v2/").status_code == 200
    assert client.get(blob_url).status_code == 503
    proxy.set_mode("status", status=503, methods=["HEAD"])
    assert client.get(blob_url).status_code == 200
    assert client.head(blob_url).status_code == 503
    proxy.set_mode("status", status=503, times=1)
    assert client.get(blob_url).status_code == 503
    assert client.get(blob_url).status_code == 200
    assert proxy.mode is FaultMode.STATUS
    assert proxy.fault.times == 0


def test_proxy_corrupt_blobs(
    registry: LocalRegistry, fault_proxy: FaultProxyFactory, client: httpx.Client
) -> None:
    proxy = fault_proxy(registry)
    proxy.set_mode("corrupt_blobs")
    data = b"corrupt me please" * 100
    digest = push_blob(client, proxy.url, "registry-slo/corrupt", data)  # uploads are untouched
    assert client.get(f"{registry.url}/v2/registry-slo/corrupt/blobs/{digest}").content == data
    blob = client.get(f"{proxy.url}/v2/registry-slo/corrupt/blobs/{digest}")
    assert blob.status_code == 200
    assert blob.headers["Docker-Content-Digest"] == digest
    assert len(blob.content) == len(data)
    assert blob.content != data
    assert digest_of(blob.content) != digest
    assert hashlib.sha256(blob.content).hexdigest() != digest.removeprefix("sha256:")
    head = client.head(f"{proxy.url}/v2/registry-slo/corrupt/blobs/{digest}")
    assert head.status_code == 200
    proxy.passthrough()
    assert client.get(f"{proxy.url}/v2/registry-slo/corrupt/blobs/{digest}").content == data


def test_proxy_delay(
    registry: LocalRegistry, fault_proxy: FaultProxyFactory, client: httpx.Client
) -> None:
    proxy = fault_proxy(registry)
    proxy.set_mode("delay", delay=0.4)
    started = time.monotonic()
    assert client.get(f"{proxy.url}/v2/").status_code == 200
    assert time.monotonic() - started >= 0.4
    proxy.passthrough()
    started = time.monotonic()
    assert client.get(f"{proxy.url}/v2/").status_code == 200
    assert time.monotonic() - started < 0.4


def test_proxy_survives_upstream_restart(
    registry: LocalRegistry, fault_proxy: FaultProxyFactory, client: httpx.Client
) -> None:
    proxy = fault_proxy(registry)
    assert client.get(f"{proxy.url}/v2/").status_code == 200
    registry.restart()
    # The proxy's pooled upstream connection died with the old process: it reconnects.
    assert client.get(f"{proxy.url}/v2/").status_code == 200


def test_proxy_upstream_down_is_502(
    stopped_registry_url: str, fault_proxy: FaultProxyFactory, client: httpx.Client
) -> None:
    proxy = fault_proxy(stopped_registry_url)
    response = client.get(f"{proxy.url}/v2/")
    assert response.status_code == 502
    assert response.json()["errors"][0]["code"] == "UNAVAILABLE"


# -- skopeo --------------------------------------------------------------------------------


def test_skopeo_available_and_talks_to_registry(
    registry: LocalRegistry, client: httpx.Client
) -> None:
    skopeo = _require("skopeo")
    version = subprocess.run(
        [skopeo, "--version"], capture_output=True, text=True, check=True, timeout=30
    )
    assert version.stdout.startswith("skopeo version")
    image = push_image(client, registry.url, "registry-slo/skopeo")
    inspected = subprocess.run(
        [
            skopeo,
            "inspect",
            "--raw",
            "--tls-verify=false",
            f"docker://{registry.host}/{image.repo}:latest",
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert json.loads(inspected.stdout) == json.loads(image.manifest)


def test_immutable_refuses_writes_through_open_descriptors(tmp_path: Path) -> None:
    path = tmp_path / "file"
    path.write_bytes(b"before")
    with path.open("r+b", buffering=0) as handle, immutable(path):
        with pytest.raises(PermissionError):
            handle.write(b"after")
        with pytest.raises(PermissionError):
            path.unlink()
    assert path.read_bytes() == b"before"
    path.write_bytes(b"after")  # writable again
