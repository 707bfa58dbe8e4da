"""Nothing secret leaves the exporter: not in its log (at debug level), its metrics, its
JSON API, its status page, its OpenTelemetry spans and metrics, nor its state files.

The exporter runs against real registries with every kind of secret it holds and every
kind of failure that puts a message somewhere: an htpasswd registry with the right
password (from a file) and a wrong one (from the environment), a token registry (whose
signed tokens are secrets too), a region whose address refuses connections, and a
webhook endpoint with a bearer token that is posted to with the right token, a wrong one
and a malformed body. Each secret is a distinctive string; the test looks for it, and
for its Basic ``user:password`` base64 form, in every byte the exporter wrote or served.
"""

from __future__ import annotations

import base64
import os
import secrets
import time
from pathlib import Path

import httpx
import yaml
from conftest import require_binary
from harness import PROBER, TokenRegistry
from harness.otlp import OTLPReceiver
from harness.serve import ServeProcess
from prometheus_client.parser import text_string_to_metric_families

from registry_slo.devenv import LocalRegistry, free_port

DEADLINE = 60.0


def _forms(user: str, secret: str) -> list[bytes]:
    """How a secret could show: as is, and inside a Basic header."""
    basic = base64.b64encode(f"{user}:{secret}".encode())
    return [secret.encode(), basic, basic.rstrip(b"=")]


def test_no_secret_in_logs_metrics_pages_spans_or_state(
    tmp_path: Path, token_registry: TokenRegistry, stopped_registry_url: str,
) -> None:
    require_binary("docker-registry")
    right = "right-pw-" + secrets.token_hex(8)
    wrong = "wrong-pw-" + secrets.token_hex(8)
    token = "hook-token-" + secrets.token_hex(8)
    wrong_token = "bad-token-" + secrets.token_hex(8)
    password_file = tmp_path / "password"
    password_file.write_text(right + "\n")
    prober_file = tmp_path / "prober-password"
    prober_file.write_text(PROBER.password)
    token_file = tmp_path / "hook-token"
    token_file.write_text(token)
    hook_port = free_port()
    with LocalRegistry(auth=("htpasswd", {"prober": right})) as htpasswd, \
            OTLPReceiver() as otlp:
        basic = {"type": "basic", "username": "prober"}
        probe = {"interval": "2s", "timeout": "2s"}
        config = tmp_path / "regions.yaml"
        config.write_text(yaml.safe_dump({
            "listen": f"127.0.0.1:{free_port()}",
            "log_format": "json",
            "log_level": "debug",
            "state_dir": str(tmp_path / "state"),
            "otel": {"traces": True, "metrics": True, "endpoint": otlp.endpoint,
                     "protocol": "grpc", "metrics_interval": "1s"},
            "regions": [
                {"name": "right", "url": htpasswd.url, "probe": probe,
                 "auth": {**basic, "password_file": str(password_file)}},
                {"name": "wrong", "url": htpasswd.url, "probe": probe,
                 "auth": {**basic, "password_env": "WRONG_PASSWORD"}},
                {"name": "token", "url": token_registry.url, "probe": probe,
                 "auth": {**basic, "password_file": str(prober_file)}},
                {"name": "down", "url": stopped_registry_url, "probe": probe,
                 "auth": {**basic, "password_file": str(password_file)}},
            ],
            "ingest": {"notifications": {
                "listen": f"127.0.0.1:{hook_port}",
                "bearer_token_file": str(token_file),
                "endpoints": [{"name": "events", "region": "right",
                               "format": "distribution"}]}},
        }))
        log = tmp_path / "exporter.log"
        serve = ServeProcess(config, log, env={
            **os.environ, "WRONG_PASSWORD": wrong})
        try:
            hook = f"http://127.0.0.1:{hook_port}/notifications/events"
            with httpx.Client(trust_env=False, timeout=10) as client:
                _wait_listening(client, f"http://127.0.0.1:{hook_port}/healthz", serve)
                for header in (f"Bearer {token}", f"Bearer {wrong_token}",
                               "Basic " + base64.b64encode(f"x:{wrong_token}".encode()).decode()):
                    for body in (b'{"events": []}', b'{"events": [{"id": 1}]}', b"{"):
                        client.post(hook, content=body, headers={
                            "Authorization": header,
                            "Content-Type": "application/vnd.docker.distribution.events.v1+json"})
            _wait_for_failures_and_spans(serve, otlp)
            served = b"".join(serve.get(path).content
                              for path in ("/metrics", "/api/v1/slo", "/"))
        finally:
            serve.stop()
    issued = [t.token for t in token_registry.token_server.issued]
    assert issued, "the token registry issued tokens"
    state = b"".join(p.read_bytes() for p in (tmp_path / "state").rglob("*") if p.is_file())
    places = {"log": log.read_bytes(), "served": served, "otlp": b"".join(otlp.raw),
              "state": state}
    held = [*_forms("prober", right), *_forms("prober", wrong),
            *_forms("prober", PROBER.password), token.encode(), wrong_token.encode(),
            *(t.encode() for t in issued)]
    leaks = [(name, secret[:16]) for name, data in places.items()
             for secret in held if secret in data]
    assert not leaks
    # The places were full of what the failures say (the test looked where it matters).
    assert b"wrong" in places["log"] and b"auth" in places["log"]
    assert b"401" in places["log"] or b"unauthorized" in places["log"].lower()


def _wait_listening(client: httpx.Client, url: str, serve: ServeProcess) -> None:
    """The webhook listener starts after ``/healthz`` of the main one answers."""
    deadline = time.monotonic() + DEADLINE
    while True:
        try:
            if client.get(url).status_code == 200:
                return
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, serve.tail()
        time.sleep(0.1)


def _wait_for_failures_and_spans(serve: ServeProcess, otlp: OTLPReceiver) -> None:
    """Until the good regions' probes have succeeded, the bad ones' have failed, and
    spans and metrics have reached the OTLP receiver."""
    deadline = time.monotonic() + DEADLINE
    while True:
        success: dict[str, set[float]] = {}
        for family in text_string_to_metric_families(serve.get("/metrics").text):
            for sample in family.samples:
                if sample.name == "registry_slo_probe_success":
                    success.setdefault(sample.labels["region"], set()).add(sample.value)
        if (1.0 in success.get("right", set()) and 1.0 in success.get("token", set())
                and success.get("wrong") == {0.0} and success.get("down") == {0.0}
                and otlp.spans and otlp.metrics):
            return
        assert time.monotonic() < deadline, (success, len(otlp.spans), serve.tail())
        time.sleep(0.5)
