"""The push probe: a fresh blob, an OCI config and manifest under a unique tag (M1, M4)."""

from __future__ import annotations

import secrets
import time

import structlog

from registry_slo.oci import RegistryError, phase
from registry_slo.probes._base import Outcome, Probe
from registry_slo.probes._content import Image, random_image
from registry_slo.probes._region import RegionState

log = structlog.get_logger("registry_slo.probes")

FIXED_TAG = "registry-slo-push"
"""The tag push probes overwrite when the registry refuses deletes."""
_ABSENT = "sha256:" + "0" * 64
"""A manifest digest no registry holds (the delete capability check)."""


class PushProbe(Probe):
    """Push a unique one-layer image, then delete it so probes do not fill storage."""

    kind = "push"

    def __init__(self, state: RegionState) -> None:
        super().__init__(state.name)
        self.state = state
        self._image: Image | None = None
        self._pushed: list[tuple[str, str]] = []  # (kind, digest) to delete

    async def prepare(self) -> None:
        self._image = random_image(self.state.config.probe.blob_size, "push")
        self._pushed = []
        if self.state.delete_supported is None:
            await self._check_delete()

    async def _check_delete(self) -> None:
        """Learn whether the registry deletes before pushing a first unique tag: a
        DELETE of a manifest nobody has answers 405 (or UNSUPPORTED) where deletes are
        disabled, and 404 where they work."""
        try:
            await self.state.client.delete_manifest(self.state.repository, _ABSENT)
        except RegistryError as exc:
            if exc.status == 405 or exc.oci_code == "UNSUPPORTED":
                self.state.note_delete_unsupported(exc.message)
            elif exc.status == 404:
                self.state.delete_supported = True
            # Anything else (auth, network): the first cleanup will tell.

    def _tag(self) -> str:
        if self.state.delete_supported is False:
            return FIXED_TAG
        return f"push-{int(time.time())}-{secrets.token_hex(4)}"

    async def run(self) -> Outcome:
        image = self._image
        assert image is not None, "prepare() first"
        client, repository = self.state.client, self.state.repository
        with phase("upload"):
            await client.upload_blob(repository, image.layer.data, image.layer.digest)
            self._pushed.append(("blob", image.layer.digest))
            await client.upload_blob(repository, image.config.data, image.config.digest)
            self._pushed.append(("blob", image.config.digest))
        with phase("manifest"):
            digest = await client.put_manifest(
                repository, self._tag(), image.manifest.data, image.media_type
            )
        self._pushed.insert(0, ("manifest", digest))
        return Outcome(repository=repository, digest=digest)

    async def cleanup(self) -> None:
        self._image = None  # blob_size bytes per region otherwise stay in memory
        if self.state.delete_supported is False:
            return
        client, repository = self.state.client, self.state.repository
        for kind, digest in self._pushed:
            try:
                if kind == "manifest":
                    await client.delete_manifest(repository, digest)
                else:
                    await client.delete_blob(repository, digest)
            except RegistryError as exc:
                if exc.status == 405 or exc.oci_code == "UNSUPPORTED":
                    self.state.note_delete_unsupported(exc.message)
                    return
                log.warning(
                    "push probe cleanup failed",
                    region=self.region, digest=digest, reason=str(exc.reason),
                    detail=exc.message,
                )
                return
        self.state.delete_supported = True
        self._pushed = []
