"""The pull probe: a canary image by tag, then by digest, every blob verified (M2, M3);
or, for registries that meter pulls, the same by ``HEAD`` only (``pull_method: head``)."""

from __future__ import annotations

import structlog

from registry_slo._units import LARGEST_SIZE
from registry_slo.oci import (
    DigestMismatch,
    NotFound,
    ProtocolViolation,
    RegistryClient,
    media,
    phase,
)
from registry_slo.probes._base import Outcome, Probe
from registry_slo.probes._content import canary_image
from registry_slo.probes._region import RegionState

log = structlog.get_logger("registry_slo.probes")

_INDEXES = (media.OCI_INDEX, media.DOCKER_MANIFEST_LIST)


async def seed_canary(state: RegionState) -> str:
    """Make sure the region holds the canary image under its tag; return its digest.

    The canary is deterministic, so exporters sharing a registry agree on its digest.
    """
    probe = state.config.probe
    client, repository = state.client, state.repository
    image = canary_image(probe.blob_size)
    current = await client.head_manifest(repository, probe.canary_tag)
    if current != image.manifest.digest:
        for blob in (image.layer, image.config):
            if not await client.blob_exists(repository, blob.digest):
                await client.upload_blob(repository, blob.data, blob.digest)
        await client.put_manifest(
            repository, probe.canary_tag, image.manifest.data, image.media_type
        )
        log.info(
            "seeded canary image",
            region=state.name, repository=repository, tag=probe.canary_tag,
            digest=image.manifest.digest, replaced=current,
        )
    state.canary_digest = image.manifest.digest
    return image.manifest.digest


def _blob(descriptor: object) -> tuple[str, int]:
    """``(digest, size)`` of a manifest's descriptor.

    Raises:
        ProtocolViolation: not a descriptor of a blob this client can verify.
    """
    if not isinstance(descriptor, dict):
        raise ProtocolViolation(f"malformed manifest: a descriptor is {type(descriptor).__name__}")
    digest, size = descriptor.get("digest"), descriptor.get("size")
    if not isinstance(digest, str):  # its form is checked where it is used
        raise ProtocolViolation(f"malformed manifest: digest {str(digest)[:80]!r}")
    if isinstance(size, bool) or not isinstance(size, int) or not 0 <= size <= LARGEST_SIZE:
        raise ProtocolViolation(f"malformed manifest: size {str(size)[:40]!r} of {digest}")
    return digest, size


async def pull_and_verify(client: RegistryClient, repository: str, reference: str) -> str:
    """Pull ``reference`` by tag, then by digest, and download and verify every blob.

    Timed as the ``manifest`` and ``download`` phases. Returns the manifest digest.
    """
    try:
        with phase("manifest"):
            by_tag = await client.get_manifest(repository, reference)
            manifest = await client.get_manifest(repository, by_tag.digest)
            document = manifest.json()
            if manifest.media_type in _INDEXES or document.get("mediaType") in _INDEXES:
                first = document["manifests"][0]["digest"]
                document = (await client.get_manifest(repository, first)).json()
            blobs = [_blob(d) for d in (document["config"], *document["layers"])]
        with phase("download"):
            for digest, size in blobs:
                await client.verify_blob(repository, digest, size)
    except (KeyError, IndexError, TypeError, ValueError, AttributeError) as exc:
        raise ProtocolViolation(f"malformed manifest: {exc!r}") from exc
    return by_tag.digest


async def pull_by_head(client: RegistryClient, repository: str, reference: str,
                       digest: str, blobs: list[str]) -> str:
    """Resolve ``reference`` by tag and by digest and check that ``blobs`` exist, with
    ``HEAD`` requests only (which metered registries do not count).

    Timed as the ``manifest`` and ``download`` phases, like a full pull.

    Args:
        client: the region's client.
        repository: the canary's repository.
        reference: its tag.
        digest: the manifest digest the tag must resolve to (the canary's).
        blobs: the digests of its config and layers.

    Returns:
        The manifest digest.

    Raises:
        NotFound: the tag, the manifest or a blob is missing.
        DigestMismatch: the tag or the digest resolves to another manifest.
    """
    with phase("manifest"):
        by_tag = await client.head_manifest(repository, reference)
        if by_tag is None:
            raise NotFound(f"manifest {reference} not found (HEAD)")
        if by_tag != digest:
            raise DigestMismatch(f"{reference} resolves to {by_tag}, not the canary {digest}")
        if await client.head_manifest(repository, digest) != digest:
            raise DigestMismatch(f"HEAD of manifest {digest} names another digest")
    with phase("download"):
        for blob in blobs:
            if not await client.blob_exists(repository, blob):
                raise NotFound(f"blob {blob} not found (HEAD)")
    return digest


class PullProbe(Probe):
    """Pull the canary by tag and by digest; download and verify config and layers.

    On a pull-through cache the canary is seeded upstream, and this is the warm pull.
    """

    kind = "pull"

    def __init__(self, state: RegionState) -> None:
        super().__init__(state.name)
        self.state = state

    @property
    def _seed_target(self) -> RegionState:
        return self.state.upstream or self.state

    async def prepare(self) -> None:
        if self.state.canary_digest is None:
            self.state.canary_digest = await seed_canary(self._seed_target)

    async def run(self) -> Outcome:
        client, repository = self.state.client, self.state.repository
        probe = self.state.config.probe
        try:
            if probe.pull_method == "head":
                image = canary_image(probe.blob_size)
                digest = await pull_by_head(
                    client, repository, probe.canary_tag, image.manifest.digest,
                    [image.config.digest, image.layer.digest])
            else:
                digest = await pull_and_verify(client, repository, probe.canary_tag)
        except NotFound:
            self.state.canary_digest = None  # re-seed next time (deleted, or GC'd)
            raise
        return Outcome(repository=repository, digest=digest)
