"""The coverage check (M10): how many recent images of some repositories are signed,
attested and have an SBOM, as the registry itself holds them.

For each configured repository, the last ``coverage.tags`` tags of its tag list in natural
order (numbers compared as numbers, so version and date tags put the newest last; tags of
signatures and referrers indexes left out) are resolved with ``HEAD``; for each image:

1. the OCI 1.1 referrers API, ``GET /v2/<name>/referrers/<digest>`` (``Link`` pages
   followed): each referrer's ``artifactType`` says what it is;
2. where the registry has no referrers API (404, as distribution 2.8), the tag schema
   clients fall back to: the index under the tag ``sha256-<hex>`` lists the referrers
   with their ``artifactType``;
3. and, always, cosign's legacy tags ``sha256-<hex>.sig`` / ``.att`` / ``.sbom`` (cosign
   before 3 writes these by default), read from the tag list already fetched.

:data:`registry_slo.oci.media.ARTIFACT_TYPES` names the kinds (Sigstore bundles count
as signatures). Each run replaces the region's :class:`CoverageResults`.
"""

from __future__ import annotations

import re

from registry_slo.config import CoverageConfig
from registry_slo.oci import ProtocolViolation, RegistryClient, RegistryError
from registry_slo.oci.media import COSIGN_SUFFIXES, ArtifactKind, artifact_kind, fallback_tag
from registry_slo.probes._base import Outcome, Probe
from registry_slo.probes._region import CoverageResults, RegionState, RepositoryCoverage

__all__ = ["CoverageProbe", "attached_kinds"]

_ARTIFACT_TAG = re.compile(r"sha256-[0-9a-f]{64}(?:\.[a-z]+)?")
_DIGITS = re.compile(r"(\d+)")


def _natural(tag: str) -> tuple[tuple[int, int | str], ...]:
    """Sort key: numbers as numbers (``v2`` < ``v10``, dates in order), so the last tags
    are the newest where tags carry versions or dates (a registry lists them in no
    particular order)."""
    return tuple((0, int(part)) if part.isdigit() else (1, part)
                 for part in _DIGITS.split(tag) if part)


async def attached_kinds(client: RegistryClient, repository: str, digest: str,
                         tags: set[str]) -> tuple[set[ArtifactKind], bool]:
    """What is attached to the image ``digest``, and whether the referrers API said so.

    Args:
        client: the region's client.
        repository: the image's repository.
        digest: its manifest digest.
        tags: every tag of the repository (for the tag schema and cosign's tags).
    """
    kinds: set[ArtifactKind] = set()
    referrers = await client.referrers(repository, digest)
    api = referrers is not None
    if referrers is None:
        index_tag = fallback_tag(digest)
        referrers = []
        if index_tag in tags:
            document = (await client.get_manifest(repository, index_tag)).json()
            listed = document.get("manifests") if isinstance(document, dict) else None
            if not isinstance(listed, list):
                raise ProtocolViolation(f"referrers index {index_tag}: no manifests list")
            referrers = [d for d in listed if isinstance(d, dict)]
    for descriptor in referrers:
        found = artifact_kind(str(descriptor.get("artifactType") or ""))
        if found is not None:
            kinds.add(found)
    prefix = fallback_tag(digest)
    kinds |= {kind for suffix, kind in COSIGN_SUFFIXES.items() if f"{prefix}.{suffix}" in tags}
    return kinds, api


class CoverageProbe(Probe):
    """The coverage check of one region (see the module docstring)."""

    kind = "coverage"

    def __init__(self, state: RegionState, config: CoverageConfig,
                 results: CoverageResults) -> None:
        super().__init__(state.name)
        self.state = state
        self.config = config
        self.results = results

    async def run(self) -> Outcome:
        client = self.state.client
        found: dict[str, RepositoryCoverage] = {}
        failed: RegistryError | None = None
        for repository in self.config.repositories:
            try:
                found[repository] = await self._repository(client, repository)
            except RegistryError as exc:
                # One repository's failure (a typo, revoked access) leaves the others'
                # figures current; the run still fails, naming the first reason.
                failed = failed or exc
        self.results.repositories = found
        if failed is not None:
            raise failed
        return Outcome(repository=",".join(self.config.repositories))

    async def _repository(self, client: RegistryClient, repository: str
                          ) -> RepositoryCoverage:
        tags = await client.list_tags(repository)
        every = set(tags)
        images = sorted((t for t in tags if not _ARTIFACT_TAG.fullmatch(t)),
                        key=_natural)[-self.config.tags:]
        counts = {"signature": 0, "attestation": 0, "sbom": 0}
        checked, api = 0, True
        for tag in images:
            digest = await client.head_manifest(repository, tag)
            if digest is None:
                continue  # deleted since the tag list was read
            kinds, answered = await attached_kinds(client, repository, digest, every)
            api = api and answered
            checked += 1
            for kind in kinds:
                counts[kind] += 1
        return RepositoryCoverage(checked, counts["signature"], counts["attestation"],
                                  counts["sbom"], api)
