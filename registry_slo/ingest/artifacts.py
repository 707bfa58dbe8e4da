"""What a pushed manifest is, by the tag it was pushed under (M10: signed image ratio).

Signatures, attestations and SBOMs attached with cosign (and tools that follow its
layout) are pushed under the tag ``sha256-<digest of the image>.sig`` (``.att``,
``.sbom``); the OCI 1.1 referrers index a client keeps on a registry without the
referrers API is pushed under the bare ``sha256-<digest>`` (``referrers``, not an image);
everything else pushed under a tag is an image. A manifest pushed by digest only (the
children of a multi-arch index, OCI 1.1 referrers with a ``subject``) has no tag to tell:
it is ``untagged``, and stays out of the ratio — registry logs and notifications carry no
``artifactType``; the opt-in coverage check (``coverage:`` of a region) asks the registry
what each image's referrers are. Registries that keep signatures elsewhere (Notary v1, a
separate store) show none here: the ratio is "where known".
"""

from __future__ import annotations

import re

from registry_slo.observation import Observation
from registry_slo.oci.media import COSIGN_SUFFIXES

__all__ = ["ARTIFACT_KINDS", "artifact_kind", "pushed_artifact"]

ARTIFACT_KINDS = ("image", "signature", "attestation", "sbom", "referrers", "untagged")
"""Values of the ``artifact`` label of ``registry_slo_registry_manifest_pushes_total``."""

_COSIGN = re.compile(r"sha256-[0-9a-f]{64}(?:\.(sig|att|sbom))?")


def artifact_kind(tag: str | None) -> str:
    """The :data:`ARTIFACT_KINDS` value of a manifest pushed under ``tag``."""
    if not tag:
        return "untagged"
    match = _COSIGN.fullmatch(tag)
    if match is None:
        return "image"
    suffix = match.group(1)
    return "referrers" if suffix is None else COSIGN_SUFFIXES[suffix]


def pushed_artifact(observation: Observation) -> str | None:
    """The :data:`ARTIFACT_KINDS` value of a successful manifest push (``None`` for
    any other operation)."""
    if observation.operation != "push_manifest" or not observation.success:
        return None
    return artifact_kind(observation.tag)
