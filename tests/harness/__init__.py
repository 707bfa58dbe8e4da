"""Real-component test harness: token server, fault proxy, seeding helpers; a local
Prometheus in :mod:`harness.prometheus`, an OTLP receiver in :mod:`harness.otlp`.

The seeding helpers talk to a registry with plain httpx (not the project's OCI client),
so tests can prepare registry content independently of the code under test.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx

from registry_slo.devenv import LocalRegistry, registry_binary

from .faultproxy import Fault, FaultMode, FaultProxy
from .tokenserver import TokenServer

__all__ = [
    "APT_PACKAGES",
    "OCI_CONFIG",
    "OCI_LAYER",
    "OCI_MANIFEST",
    "PROBER",
    "READER",
    "Credentials",
    "Fault",
    "FaultMode",
    "FaultProxy",
    "PushedImage",
    "TokenRegistry",
    "TokenServer",
    "binary_path",
    "digest_of",
    "in_ci",
    "missing_binary_message",
    "push_blob",
    "push_image",
    "require_binary",
]

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"

APT_PACKAGES: dict[str, str] = {
    "docker-registry": "docker-registry",
    "skopeo": "skopeo",
    "prometheus": "prometheus",
    "promtool": "prometheus",
    "alertmanager": "prometheus-alertmanager",
    "amtool": "prometheus-alertmanager",
    "chromium": "chromium",
    "chattr": "e2fsprogs",
    "systemd-analyze": "systemd",
    "curl": "curl",
}
"""Binary name → Debian package that ships it."""


@dataclass(frozen=True)
class Credentials:
    """A user name and password."""

    username: str
    password: str

    def as_tuple(self) -> tuple[str, str]:
        """Return ``(username, password)`` (httpx's ``auth=`` form)."""
        return self.username, self.password


PROBER = Credentials("prober", "prober-secret-1")
"""Read/write user: htpasswd registries; push/pull/delete on ``registry-slo/*`` with tokens."""

READER = Credentials("reader", "reader-secret-1")
"""Pull-only user (``*``) on token registries; also in the htpasswd file."""


@dataclass
class TokenRegistry:
    """A token-auth registry together with its token server.

    Attributes:
        registry: the running `LocalRegistry` (``auth.token``).
        token_server: the running `TokenServer` whose realm the registry announces.
    """

    registry: LocalRegistry
    token_server: TokenServer

    @property
    def url(self) -> str:
        """The registry's base URL."""
        return self.registry.url

    @property
    def host(self) -> str:
        """The registry's ``127.0.0.1:PORT``."""
        return self.registry.host

    @property
    def realm(self) -> str:
        """The token endpoint URL."""
        return self.token_server.realm

    @property
    def service(self) -> str:
        """The token service (``aud``)."""
        return self.token_server.service


def binary_path(name: str) -> str | None:
    """Locate a real component binary (``docker-registry`` honours its env override).

    Args:
        name: binary name, e.g. ``docker-registry`` or ``skopeo``.

    Returns:
        The path, or ``None`` when missing.
    """
    if name == "docker-registry":
        try:
            return str(registry_binary())
        except RuntimeError:
            return None
    return shutil.which(name)


def missing_binary_message(name: str) -> str:
    """Explain how to install a missing binary (names the Debian package)."""
    package = APT_PACKAGES.get(name, name)
    return f"{name} not found: apt-get install {package}"


def in_ci() -> bool:
    """Whether we run under CI (``CI=true``), where missing components are failures."""
    return os.environ.get("CI", "").lower() == "true"


def require_binary(name: str) -> str:
    """Return the path of a real component binary, or skip (locally) / fail (CI).

    Args:
        name: e.g. ``docker-registry``, ``skopeo``, ``promtool``.

    Returns:
        The binary's path.
    """
    import pytest

    path = binary_path(name)
    if path is None:
        message = missing_binary_message(name)
        if in_ci():
            pytest.fail(message)
        pytest.skip(message)
    return path


def digest_of(data: bytes) -> str:
    """Return ``sha256:<hex>`` of ``data``."""
    return f"sha256:{hashlib.sha256(data).hexdigest()}"


def push_blob(client: httpx.Client, base_url: str, repo: str, data: bytes) -> str:
    """Upload a blob with POST then PUT ``?digest=`` (the monolithic two-step upload).

    Args:
        client: an httpx client carrying whatever auth the registry needs.
        base_url: registry (or proxy) base URL.
        repo: repository name.
        data: blob content.

    Returns:
        The blob digest.
    """
    digest = digest_of(data)
    started = client.post(f"{base_url}/v2/{repo}/blobs/uploads/")
    started.raise_for_status()
    location = started.headers["Location"]
    location = location if "://" in location else f"{base_url}{location}"
    # Append to the upload URL's own query (``_state=...``): httpx's ``params=`` would
    # replace it.
    separator = "&" if "?" in location else "?"
    finished = client.put(
        f"{location}{separator}digest={quote(digest)}",
        content=data,
        headers={"Content-Type": "application/octet-stream"},
    )
    finished.raise_for_status()
    return digest


@dataclass(frozen=True)
class PushedImage:
    """What `push_image` stored."""

    repo: str
    tag: str
    manifest_digest: str
    manifest: bytes
    config_digest: str
    layer_digest: str
    layer: bytes


def push_image(
    client: httpx.Client,
    base_url: str,
    repo: str,
    tag: str = "latest",
    layer: bytes = b"registry-slo test layer\n",
) -> PushedImage:
    """Push a minimal single-layer OCI image (config, layer, manifest).

    Args:
        client: an httpx client carrying whatever auth the registry needs.
        base_url: registry (or proxy) base URL.
        repo: repository name.
        tag: tag to push the manifest under.
        layer: layer content (not a real tarball; the registry does not care).

    Returns:
        The digests and bytes pushed.
    """
    config = json.dumps(
        {"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": []}}
    ).encode()
    config_digest = push_blob(client, base_url, repo, config)
    layer_digest = push_blob(client, base_url, repo, layer)
    manifest_doc: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "digest": config_digest, "size": len(config)},
        "layers": [{"mediaType": OCI_LAYER, "digest": layer_digest, "size": len(layer)}],
    }
    manifest = json.dumps(manifest_doc).encode()
    response = client.put(
        f"{base_url}/v2/{repo}/manifests/{tag}",
        content=manifest,
        headers={"Content-Type": OCI_MANIFEST},
    )
    response.raise_for_status()
    return PushedImage(repo, tag, digest_of(manifest), manifest, config_digest, layer_digest, layer)
