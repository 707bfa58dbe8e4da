"""Media types of the OCI image spec and Docker's v2 formats."""

from __future__ import annotations

from typing import Literal

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER_TAR = "application/vnd.oci.image.layer.v1.tar"
OCI_LAYER_TAR_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"

MANIFEST_TYPES = (OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_MANIFEST_LIST)
"""Every manifest type we accept, in order of preference (the ``Accept`` header)."""

# -- supply-chain artifacts (M10) ----------------------------------------------------------

ArtifactKind = Literal["signature", "attestation", "sbom"]
"""What a manifest attached to an image is."""

ARTIFACT_TYPES: dict[str, ArtifactKind] = {
    # Signatures: cosign's legacy layout, Notary v2 (notation), and Sigstore bundles
    # (cosign 3 stores a signature as a bundle referrer; a bundle always signs).
    "application/vnd.dev.cosign.artifact.sig.v1+json": "signature",
    "application/vnd.dev.cosign.simplesigning.v1+json": "signature",
    "application/vnd.cncf.notary.signature": "signature",
    "application/vnd.dev.sigstore.bundle.v0.3+json": "signature",
    "application/vnd.dev.sigstore.bundle+json;version=0.3": "signature",
    # Attestations: in-toto statements in DSSE envelopes.
    "application/vnd.in-toto+json": "attestation",
    "application/vnd.dsse.envelope.v1+json": "attestation",
    "application/vnd.dev.cosign.attestation.v1+json": "attestation",
    # SBOMs: SPDX, CycloneDX, Syft, and cosign's attached SBOMs.
    "application/spdx+json": "sbom",
    "text/spdx": "sbom",
    "application/vnd.cyclonedx+json": "sbom",
    "application/vnd.cyclonedx+xml": "sbom",
    "application/vnd.syft+json": "sbom",
    "application/vnd.dev.cosign.artifact.sbom.v1+json": "sbom",
}
"""``artifactType`` (or, for artifacts before OCI 1.1, the config media type) → kind."""

COSIGN_SUFFIXES: dict[str, ArtifactKind] = {"sig": "signature", "att": "attestation",
                                            "sbom": "sbom"}
"""cosign's legacy tag layout: ``sha256-<hex of the image digest>.<suffix>``."""


def artifact_kind(artifact_type: str | None) -> ArtifactKind | None:
    """The kind of an ``artifactType`` (parameters ignored); ``None``: not one we know."""
    if not artifact_type:
        return None
    found = ARTIFACT_TYPES.get(artifact_type)
    if found is None:
        found = ARTIFACT_TYPES.get(artifact_type.split(";")[0].strip())
    return found


def fallback_tag(digest: str) -> str:
    """The OCI 1.1 referrers tag schema: the tag of ``sha256:<hex>``'s referrers index
    on registries without the referrers API (``sha256-<hex>``)."""
    algorithm, _, hex_ = digest.partition(":")
    return f"{algorithm}-{hex_}"
