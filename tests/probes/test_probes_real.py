"""Every probe against real registries: success paths and each failure reason."""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import json
import subprocess
import time
from pathlib import Path

import httpx
import pytest
from conftest import FaultProxyFactory, require_binary
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from harness import PROBER, READER, FaultMode, TokenRegistry

from registry_slo.devenv import LocalRegistry
from registry_slo.observation import Observation
from registry_slo.oci import NotFound, Reason
from registry_slo.probes import AuthProbe, PullProbe, PushProbe, RegionState, execute
from registry_slo.probes.push import FIXED_TAG

from .conftest import region


async def run(probe_cls: type[PushProbe | PullProbe | AuthProbe], state: RegionState,
              timeout: float = 5.0) -> Observation:
    try:
        return await execute(probe_cls(state), timeout)
    finally:
        await state.aclose()


def tags(registry_url: str, repository: str = "registry-slo/probe",
         auth: tuple[str, str] | None = None) -> list[str]:
    response = httpx.get(f"{registry_url}/v2/{repository}/tags/list", auth=auth)
    if response.status_code == 404:
        return []
    response.raise_for_status()
    return list(response.json()["tags"] or [])


# -- success paths ------------------------------------------------------------------


async def test_push_probe_pushes_valid_image_and_cleans_up(registry: LocalRegistry) -> None:
    state = region(registry.url, blob_size="256KiB")
    probe = PushProbe(state)
    try:
        await probe.prepare()
        outcome = await probe.run()
        assert outcome.digest is not None and outcome.digest.startswith("sha256:")
        # skopeo (a standard tool) reads what the probe pushed, before cleanup deletes it.
        skopeo = require_binary("skopeo")
        pushed = [t for t in tags(registry.url) if t.startswith("push-")]
        assert len(pushed) == 1
        result = subprocess.run(
            [skopeo, "inspect", "--tls-verify=false",
             f"docker://{registry.host}/registry-slo/probe:{pushed[0]}"],
            capture_output=True, text=True, check=True, timeout=30,
        )
        info = json.loads(result.stdout)
        assert info["Digest"] == outcome.digest
        assert info["Os"] == "linux" and len(info["Layers"]) == 1
        raw = subprocess.run(
            [skopeo, "inspect", "--raw", "--tls-verify=false",
             f"docker://{registry.host}/registry-slo/probe:{pushed[0]}"],
            capture_output=True, check=True, timeout=30,
        ).stdout
        layer = json.loads(raw)["layers"][0]
        assert 256 * 1024 < layer["size"] < 256 * 1024 + 12 * 1024
        await probe.cleanup()
        assert [t for t in tags(registry.url) if t.startswith("push-")] == []
        assert state.delete_supported is True
    finally:
        await state.aclose()


async def test_push_observation_phases_and_bytes(registry: LocalRegistry) -> None:
    result = await run(PushProbe, region(registry.url))
    assert result.success, result.detail
    assert result.reason is None
    assert set(result.phases) == {"upload", "manifest"}
    assert sum(result.phases.values()) == pytest.approx(result.duration_seconds, rel=0.05)
    assert result.bytes_sent > 64 * 1024 and result.repository == "registry-slo/probe"


async def test_pull_probe_seeds_canary_and_verifies(registry: LocalRegistry) -> None:
    state = region(registry.url)
    first = await execute(PullProbe(state), 5)
    second = await execute(PullProbe(state), 5)
    await state.aclose()
    assert first.success and second.success, (first.detail, second.detail)
    assert first.digest == second.digest == state.canary_digest
    assert set(second.phases) == {"manifest", "download"}
    assert second.bytes_received > 64 * 1024
    assert tags(registry.url) == ["canary"]


async def test_canary_is_shared_between_exporters(registry: LocalRegistry) -> None:
    a, b = region(registry.url, name="a"), region(registry.url, name="b")
    ra, rb = await run(PullProbe, a), await run(PullProbe, b)
    assert ra.success and rb.success and ra.digest == rb.digest


async def test_pull_reseeds_after_canary_deleted(registry: LocalRegistry) -> None:
    state = region(registry.url)
    assert (await execute(PullProbe(state), 5)).success
    digest = state.canary_digest
    httpx.delete(f"{registry.url}/v2/registry-slo/probe/manifests/{digest}").raise_for_status()
    gone = await execute(PullProbe(state), 5)
    assert not gone.success and gone.reason is Reason.NOT_FOUND
    again = await execute(PullProbe(state), 5)
    await state.aclose()
    assert again.success, again.detail


async def test_auth_probe_plain(registry: LocalRegistry) -> None:
    result = await run(AuthProbe, region(registry.url))
    assert result.success and "auth" in result.phases


async def test_htpasswd_all_probes(htpasswd_registry: LocalRegistry, tmp_path: Path) -> None:
    state = region(htpasswd_registry.url, tmp_path=tmp_path, username=PROBER.username,
                   password=PROBER.password)
    for cls in (PushProbe, PullProbe, AuthProbe):
        result = await execute(cls(state), 5)
        assert result.success, (cls.kind, result.detail)
    assert state.client.auth.scheme == "basic"
    await state.aclose()


async def test_token_registry_all_probes(token_registry: TokenRegistry, tmp_path: Path) -> None:
    state = region(token_registry.url, tmp_path=tmp_path, username=PROBER.username,
                   password=PROBER.password)
    results = [await execute(cls(state), 5) for cls in (PushProbe, PullProbe, AuthProbe)]
    await state.aclose()
    for result in results:
        assert result.success, (result.operation, result.detail)
    assert state.client.auth.scheme == "bearer"
    auth = results[2]
    assert auth.phases["auth"] > 0
    assert state.delete_supported is True  # the token grants delete: pushed tags are gone


async def test_token_cached_then_refreshed_before_expiry(
    token_registry: TokenRegistry, tmp_path: Path
) -> None:
    server = token_registry.token_server
    server.expires_in = 3  # refresh margin is 20% of the lifetime
    state = region(token_registry.url, tmp_path=tmp_path, username=PROBER.username,
                   password=PROBER.password)
    try:
        assert (await execute(PullProbe(state), 5)).success
        before = server.token_requests
        assert (await execute(PullProbe(state), 5)).success
        assert server.token_requests == before, "a valid cached token was not reused"
        await asyncio.sleep(2.6)  # past the refresh point, before expiry
        assert (await execute(PullProbe(state), 5)).success
        assert server.token_requests > before, "the token was not refreshed"
    finally:
        await state.aclose()


async def test_nodelete_registry_says_so_and_bounds_tags(
    nodelete_registry: LocalRegistry, caplog: pytest.LogCaptureFixture
) -> None:
    state = region(nodelete_registry.url)
    results = [await execute(PushProbe(state), 5) for _ in range(4)]
    await state.aclose()
    assert all(r.success for r in results), [r.detail for r in results]
    assert state.delete_supported is False
    # The refusal is known before the first push: only the fixed tag exists.
    assert tags(nodelete_registry.url) == [FIXED_TAG]


# -- failure reasons ----------------------------------------------------------------


async def test_wrong_password_is_auth(htpasswd_registry: LocalRegistry, tmp_path: Path) -> None:
    state = region(htpasswd_registry.url, tmp_path=tmp_path, username=PROBER.username,
                   password="wrong")
    result = await run(AuthProbe, state)
    assert not result.success and result.reason is Reason.AUTH
    assert result.status == 401 and result.oci_code == "UNAUTHORIZED"


async def test_no_credentials_is_auth(htpasswd_registry: LocalRegistry) -> None:
    result = await run(PullProbe, region(htpasswd_registry.url))
    assert result.reason is Reason.AUTH


async def test_token_wrong_password_is_auth(
    token_registry: TokenRegistry, tmp_path: Path
) -> None:
    state = region(token_registry.url, tmp_path=tmp_path, username=PROBER.username,
                   password="wrong")
    result = await run(AuthProbe, state)
    assert result.reason is Reason.AUTH and "token service" in (result.detail or "")


async def test_token_scope_denied_is_denied(
    token_registry: TokenRegistry, tmp_path: Path
) -> None:
    state = region(token_registry.url, tmp_path=tmp_path, username=READER.username,
                   password=READER.password)
    result = await run(PushProbe, state)
    assert not result.success and result.reason is Reason.DENIED, result.detail


async def test_registry_stopped_is_connect(stopped_registry_url: str) -> None:
    for cls in (PushProbe, PullProbe, AuthProbe):
        result = await run(cls, region(stopped_registry_url))
        assert result.reason is Reason.CONNECT, (cls.kind, result.detail)


async def test_registry_killed_mid_life_is_connect(registry: LocalRegistry) -> None:
    state = region(registry.url)
    assert (await execute(PullProbe(state), 5)).success
    registry.kill()
    result = await execute(PullProbe(state), 5)
    await state.aclose()
    assert result.reason is Reason.CONNECT, result.detail


async def test_stall_is_timeout_within_budget(
    registry: LocalRegistry, fault_proxy: FaultProxyFactory
) -> None:
    proxy = fault_proxy(registry)
    proxy.set_mode(FaultMode.STALL)
    state = region(proxy.url, timeout="1s", interval="2s")
    loop = asyncio.get_running_loop()
    started = loop.time()
    result = await run(AuthProbe, state, timeout=1.0)
    elapsed = loop.time() - started
    assert result.reason is Reason.TIMEOUT
    assert elapsed < 3.5, f"hard timeout not enforced: {elapsed:.1f}s"


async def test_corrupt_blob_is_digest_mismatch(
    registry: LocalRegistry, fault_proxy: FaultProxyFactory
) -> None:
    proxy = fault_proxy(registry)
    state = region(proxy.url)
    assert (await execute(PullProbe(state), 5)).success
    proxy.set_mode(FaultMode.CORRUPT_BLOBS)
    result = await execute(PullProbe(state), 5)
    await state.aclose()
    assert result.reason is Reason.DIGEST_MISMATCH, result.detail


@pytest.mark.parametrize(
    ("status", "reason"),
    [(500, Reason.SERVER_ERROR), (503, Reason.SERVER_ERROR), (429, Reason.RATE_LIMITED),
     (404, Reason.NOT_FOUND), (403, Reason.DENIED), (400, Reason.PROTOCOL)],
)
async def test_status_answers_map_to_reasons(
    registry: LocalRegistry, fault_proxy: FaultProxyFactory, status: int, reason: Reason
) -> None:
    proxy = fault_proxy(registry)
    state = region(proxy.url)
    assert (await execute(PullProbe(state), 5)).success
    proxy.set_mode(FaultMode.STATUS, status=status, retry_after=1, path="/manifests/")
    result = await execute(PullProbe(state), 5)
    await state.aclose()
    assert result.reason is reason, result.detail
    assert result.status == status and result.oci_code


async def test_reset_is_connect(registry: LocalRegistry, fault_proxy: FaultProxyFactory) -> None:
    proxy = fault_proxy(registry)
    proxy.set_mode(FaultMode.RESET)
    result = await run(PullProbe, region(proxy.url))
    assert result.reason is Reason.CONNECT, result.detail


def _self_signed_cert(directory: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName(
            [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "tls.crt", directory / "tls.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    return cert_path, key_path


async def test_tls_untrusted_is_tls_and_ca_file_fixes_it(tmp_path: Path) -> None:
    require_binary("docker-registry")
    cert, key = _self_signed_cert(tmp_path)
    with LocalRegistry(tls=(cert, key)) as registry:
        assert registry.url.startswith("https://")
        untrusted = await run(AuthProbe, region(registry.url))
        assert untrusted.reason is Reason.TLS, untrusted.detail
        state = _tls_region(registry.url, cert)
        trusted = await run(PullProbe, state)
        assert trusted.success, trusted.detail
        # The certificate's expiry, as presented (valid for one day from now).
        expiry = state.client.certificate_expiry()
        assert abs(expiry - (time.time() + 86400)) < 120


def _tls_region(url: str, ca: Path) -> RegionState:
    from registry_slo.config import RegionConfig

    return RegionState(RegionConfig.model_validate(
        {"name": "tls", "url": url, "tls": {"ca_file": str(ca)},
         "probe": {"blob_size": "16KiB", "timeout": "5s"}}))


async def test_client_not_found(registry: LocalRegistry) -> None:
    state = region(registry.url)
    with pytest.raises(NotFound) as info:
        await state.client.get_manifest("registry-slo/nothing", "latest")
    await state.aclose()
    assert info.value.reason is Reason.NOT_FOUND and info.value.oci_code == "MANIFEST_UNKNOWN"


async def test_large_blob_uploads_in_chunks(registry: LocalRegistry) -> None:
    state = region(registry.url, blob_size="3MiB", chunk_size="1MiB")
    push = await execute(PushProbe(state), 10)
    await state.aclose()
    assert push.success, push.detail
    assert push.bytes_sent > 3 * 1024 * 1024
    access = registry.access_log_path.read_text()
    assert access.count('"PATCH /v2/registry-slo/probe/blobs/uploads/') == 4  # 3 MiB + tar
