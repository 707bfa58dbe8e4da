"""Images the probes push: a valid single-layer OCI image that standard tools can read."""

from __future__ import annotations

import functools
import hashlib
import io
import json
import os
import tarfile
from dataclasses import dataclass
from datetime import UTC, datetime

from registry_slo import __version__
from registry_slo.oci import media, sha256_digest

_PAYLOAD_PATH = "registry-slo/payload.bin"
_EPOCH = "1970-01-01T00:00:00Z"


@dataclass(frozen=True)
class Blob:
    """Bytes with their digest."""

    data: bytes
    digest: str

    @classmethod
    def of(cls, data: bytes) -> Blob:
        """Wrap ``data`` with its sha256 digest."""
        return cls(data, sha256_digest(data))


@dataclass(frozen=True)
class Image:
    """A one-layer OCI image: layer, config and manifest."""

    layer: Blob
    config: Blob
    manifest: Blob

    @property
    def media_type(self) -> str:
        """The manifest's media type."""
        return media.OCI_MANIFEST


def _layer(payload: bytes) -> bytes:
    buffer = io.BytesIO()
    info = tarfile.TarInfo(_PAYLOAD_PATH)
    info.size = len(payload)
    info.mode = 0o644
    info.mtime = 0
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        tar.addfile(info, io.BytesIO(payload))
    return buffer.getvalue()


def build_image(payload: bytes, *, created: str, annotations: dict[str, str]) -> Image:
    """Build an uncompressed one-layer image around ``payload``.

    Args:
        payload: the content of the single file in the layer.
        created: RFC 3339 creation time (config and annotation).
        annotations: extra manifest annotations.
    """
    layer = Blob.of(_layer(payload))
    config = {
        "created": created,
        "architecture": "amd64",
        "os": "linux",
        "config": {"Labels": {"org.opencontainers.image.vendor": "registry-slo"}},
        "rootfs": {"type": "layers", "diff_ids": [layer.digest]},
        "history": [{"created": created, "created_by": f"registry-slo {__version__} probe"}],
    }
    config_blob = Blob.of(json.dumps(config, sort_keys=True, separators=(",", ":")).encode())
    manifest = {
        "schemaVersion": 2,
        "mediaType": media.OCI_MANIFEST,
        "config": {
            "mediaType": media.OCI_CONFIG,
            "digest": config_blob.digest,
            "size": len(config_blob.data),
        },
        "layers": [
            {"mediaType": media.OCI_LAYER_TAR, "digest": layer.digest, "size": len(layer.data)}
        ],
        "annotations": {"org.opencontainers.image.created": created, **annotations},
    }
    manifest_blob = Blob.of(json.dumps(manifest, sort_keys=True, indent=2).encode())
    return Image(layer=layer, config=config_blob, manifest=manifest_blob)


@functools.cache
def _random_bulk(size: int) -> bytes:
    return os.urandom(size)


def random_image(size: int, purpose: str) -> Image:
    """A fresh image with ``size`` random payload bytes (every call unique).

    The payload starts with 32 fresh random bytes and goes on with random bytes drawn
    once per process: every layer has a new digest (nothing for the registry to reuse or
    deduplicate), without paying for ``size`` fresh random bytes on every push.
    """
    created = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    head = os.urandom(min(32, size))
    payload = head + _random_bulk(size)[len(head) :]
    return build_image(
        payload, created=created, annotations={"dev.registry-slo.probe": purpose}
    )


def canary_image(size: int) -> Image:
    """The deterministic canary: the same ``size`` always gives the same digests."""
    payload = hashlib.shake_256(f"registry-slo canary {size}".encode()).digest(size)
    return build_image(payload, created=_EPOCH, annotations={"dev.registry-slo.probe": "canary"})
