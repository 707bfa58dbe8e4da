"""The coverage check (M10) against a real registry: signatures, attestations and SBOMs
the way cosign (legacy tags), cosign 3 (Sigstore bundles) and notation store them.

Distribution 2.8 has no referrers API (it answers 404), so what the check reads there is
the tag schema: each image's referrers index under ``sha256-<hex>``, and cosign's
``.sig``/``.att``/``.sbom`` tags. The referrers API itself is exercised against the
scripted registry, standing for a registry that has it (none runs here)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx
import pytest
import yaml
from harness import OCI_MANIFEST, digest_of, push_blob, push_image
from harness.hostile import HostileRegistry, Request, json_answer
from harness.serve import ServeProcess
from prometheus_client.parser import text_string_to_metric_families

from registry_slo.config import CoverageConfig
from registry_slo.devenv import LocalRegistry, free_port
from registry_slo.oci import RegistryClient
from registry_slo.oci.media import OCI_INDEX
from registry_slo.probes import CoverageProbe, CoverageResults, RepositoryCoverage, execute
from registry_slo.probes.coverage import _natural

from .conftest import region

REPO = "team/app"
EMPTY = "application/vnd.oci.empty.v1+json"
NOTATION = "application/vnd.cncf.notary.signature"
BUNDLE = "application/vnd.dev.sigstore.bundle.v0.3+json"
SPDX = "application/spdx+json"
IN_TOTO = "application/vnd.in-toto+json"


def _referrer(client: httpx.Client, url: str, subject: tuple[str, int], artifact_type: str,
              payload: bytes) -> dict[str, object]:
    """Push an OCI 1.1 artifact whose subject is the image; return its descriptor."""
    empty = push_blob(client, url, REPO, b"{}")
    layer = push_blob(client, url, REPO, payload)
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST, "artifactType": artifact_type,
        "config": {"mediaType": EMPTY, "digest": empty, "size": 2},
        "layers": [{"mediaType": "application/octet-stream", "digest": layer,
                    "size": len(payload)}],
        "subject": {"mediaType": OCI_MANIFEST, "digest": subject[0], "size": subject[1]},
    }).encode()
    digest = digest_of(manifest)
    client.put(f"{url}/v2/{REPO}/manifests/{digest}", content=manifest,
               headers={"Content-Type": OCI_MANIFEST}).raise_for_status()
    return {"mediaType": OCI_MANIFEST, "digest": digest, "size": len(manifest),
            "artifactType": artifact_type}


def _fallback_index(client: httpx.Client, url: str, image: str,
                    descriptors: list[dict[str, object]]) -> None:
    """What a client writes on a registry without the referrers API: an index of the
    image's referrers under the tag sha256-<hex>."""
    index = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX,
                        "manifests": descriptors}).encode()
    client.put(f"{url}/v2/{REPO}/manifests/sha256-{image.removeprefix('sha256:')}",
               content=index, headers={"Content-Type": OCI_INDEX}).raise_for_status()


def _cosign_tag(client: httpx.Client, url: str, image: str, suffix: str) -> None:
    """cosign's legacy layout: an artifact under sha256-<hex>.<suffix>."""
    pushed = push_image(client, url, REPO, f"sha256-{image.removeprefix('sha256:')}.{suffix}",
                        layer=f"cosign {suffix} of {image}".encode())
    assert pushed.manifest_digest


@pytest.fixture
def attached(registry: LocalRegistry) -> dict[str, str]:
    """Four images: v1 signed and with an SBOM by cosign's tags; v2 signed by notation
    and with an SPDX SBOM, as OCI 1.1 referrers in a fallback index; v3 signed by a
    Sigstore bundle and attested (in-toto); v4 bare."""
    digests = {}
    with httpx.Client() as client:
        for tag in ("v1", "v2", "v3", "v4"):
            image = push_image(client, registry.url, REPO, tag, layer=f"image {tag}".encode())
            digests[tag] = image.manifest_digest
            subject = (image.manifest_digest, len(image.manifest))
            if tag == "v1":
                _cosign_tag(client, registry.url, image.manifest_digest, "sig")
                _cosign_tag(client, registry.url, image.manifest_digest, "sbom")
            elif tag == "v2":
                _fallback_index(client, registry.url, image.manifest_digest, [
                    _referrer(client, registry.url, subject, NOTATION, b"jws"),
                    _referrer(client, registry.url, subject, SPDX, b'{"spdxVersion":"2.3"}'),
                ])
            elif tag == "v3":
                _fallback_index(client, registry.url, image.manifest_digest, [
                    _referrer(client, registry.url, subject, BUNDLE, b"{}"),
                    _referrer(client, registry.url, subject, IN_TOTO, b"{}"),
                ])
    return digests


async def test_coverage_by_the_tag_schema(registry: LocalRegistry,
                                          attached: dict[str, str]) -> None:
    state = region(registry.url)
    try:
        results = CoverageResults()
        probe = CoverageProbe(state, CoverageConfig(repositories=(REPO,)), results)
        observation = await execute(probe, 30)
        assert observation.success, observation.detail
        assert results.repositories == {REPO: RepositoryCoverage(
            images=4, signed=3, attested=1, sbom=2, referrers_api=False)}
        # The last two tags in natural order only (v3, v4; the registry lists tags in no
        # order): one signed and attested.
        probe = CoverageProbe(state, CoverageConfig(repositories=(REPO,), tags=2), results)
        assert (await execute(probe, 30)).success
        assert results.repositories[REPO] == RepositoryCoverage(2, 1, 1, 0, False)
    finally:
        await state.aclose()


def test_the_exporter_serves_coverage(tmp_path: Path, registry: LocalRegistry,
                                      attached: dict[str, str]) -> None:
    port = free_port()
    config = tmp_path / "regions.yaml"
    config.write_text(yaml.safe_dump({
        "listen": f"127.0.0.1:{port}",
        "regions": [{"name": "east", "url": registry.url,
                     "probe": {"enabled": ["auth"], "interval": "60s"},
                     "coverage": {"repositories": [REPO, "team/missing"],
                                  "interval": "60s", "timeout": "30s"}}],
    }))
    exporter = ServeProcess(config, tmp_path / "exporter.log")
    try:
        deadline = time.monotonic() + 30
        while True:
            text = exporter.get("/metrics").text
            runs = {tuple(sorted(s.labels.items())): s.value
                    for f in text_string_to_metric_families(text) for s in f.samples
                    if s.name == "registry_slo_probe_requests_total"}
            if runs.get((("probe", "coverage"), ("region", "east"))):
                break
            assert time.monotonic() < deadline, exporter.tail()
            time.sleep(0.3)
        samples = {(s.name, s.labels.get("repository")): s.value
                   for f in text_string_to_metric_families(exporter.get("/metrics").text)
                   for s in f.samples if s.name.startswith("registry_slo_coverage_")}
        failures = {s.labels.get("reason"): s.value
                    for f in text_string_to_metric_families(exporter.get("/metrics").text)
                    for s in f.samples if s.name == "registry_slo_probe_failures_total"
                    and s.labels.get("probe") == "coverage" and s.value}
    finally:
        exporter.stop()
    # A repository that does not exist fails the check (not_found); the others' figures
    # are exported all the same.
    assert failures == {"not_found": 1.0}
    assert samples == {
        ("registry_slo_coverage_images", REPO): 4,
        ("registry_slo_coverage_signed_images", REPO): 3,
        ("registry_slo_coverage_attested_images", REPO): 1,
        ("registry_slo_coverage_sbom_images", REPO): 2,
        ("registry_slo_coverage_referrers_api", REPO): 0,
    }


async def test_referrers_api_pages_and_filter() -> None:
    """The referrers API as the OCI 1.1 spec defines it (Link pages, the artifactType
    filter, 404 for a registry without it), against the scripted registry."""
    digest = "sha256:" + "a" * 64
    path = f"/v2/{REPO}/referrers/{digest}"
    first = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
        {"digest": "sha256:" + "1" * 64, "artifactType": NOTATION},
        {"digest": "sha256:" + "2" * 64, "artifactType": SPDX}]}).encode()
    second = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
        {"digest": "sha256:" + "3" * 64, "artifactType": BUNDLE}]}).encode()

    def pages(request: Request, out: object) -> None:
        answer = json_answer(200, second) if "last=1" in request.target else json_answer(
            200, first, {"Link": f'<{path}?last=1>; rel="next"'})
        answer(request, out)  # type: ignore[arg-type]

    with HostileRegistry({path: pages}) as scripted:
        async with RegistryClient(scripted.url) as client:
            every = await client.referrers(REPO, digest)
            assert every is not None
            assert [d["artifactType"] for d in every] == [NOTATION, SPDX, BUNDLE]
            signatures = await client.referrers(REPO, digest, NOTATION)
            assert signatures is not None and [d["artifactType"] for d in signatures] == [
                NOTATION]
            assert await client.referrers(REPO, "sha256:" + "b" * 64) is None  # 404
        assert any("artifactType=application%2Fvnd.cncf.notary.signature" in r.target
                   for r in scripted.received)


def test_tags_sort_numbers_as_numbers() -> None:
    tags = ["v10", "v2", "2026-12-01", "2026-11-30", "v1.10.0", "v1.9.3", "latest"]
    assert sorted(tags, key=_natural) == [
        "2026-11-30", "2026-12-01", "latest", "v1.9.3", "v1.10.0", "v2", "v10"]
