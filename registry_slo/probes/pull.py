"""The pull probe: a canary image by tag, then by digest, every blob verified (M2, M3)."""

from __future__ import annotations

import structlog

from registry_slo._units import LARGEST_SIZE
from registry_slo.oci import NotFound, ProtocolViolation, RegistryClient, media, phase
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
        try:
            digest = await pull_and_verify(client, repository, self.state.config.probe.canary_tag)
        except NotFound:
            self.state.canary_digest = None  # re-seed next time (deleted, or GC'd)
            raise
        return Outcome(repository=repository, digest=digest)
