"""Per-region state shared by that region's probes: the client and what we learned."""

from __future__ import annotations

import functools
import ssl
from dataclasses import dataclass
from typing import TYPE_CHECKING

import structlog

from registry_slo.config import BasicAuth, RegionConfig, TLSConfig
from registry_slo.oci import Credentials, RegistryClient

if TYPE_CHECKING:
    from registry_slo.probes.rollback import RollbackResults, RollbackTargets

log = structlog.get_logger("registry_slo.probes")


def ssl_context(region: RegionConfig) -> ssl.SSLContext:
    """The TLS context for ``region``, shared by every region with the same TLS settings.

    An SSL context holds the parsed CA bundle (most of a megabyte): one per region would
    cost hundreds of megabytes with hundreds of regions.
    """
    return _context(region.tls)


@functools.cache
def _context(tls: TLSConfig) -> ssl.SSLContext:
    if tls.insecure_skip_verify:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    else:
        context = ssl.create_default_context(cafile=str(tls.ca_file) if tls.ca_file else None)
    if tls.cert_file is not None and tls.key_file is not None:
        context.load_cert_chain(str(tls.cert_file), str(tls.key_file))
    return context


def client_for(region: RegionConfig) -> RegistryClient:
    """A :class:`RegistryClient` configured for ``region``."""
    credentials = None
    if isinstance(region.auth, BasicAuth):
        credentials = Credentials(region.auth.username, region.auth.password.get_secret_value())
    return RegistryClient(
        region.base_url,
        credentials=credentials,
        verify=ssl_context(region),
        timeout=region.probe.timeout,
        chunk_size=region.probe.chunk_size,
    )


@dataclass(frozen=True, slots=True)
class RepositoryCoverage:
    """One repository's recent images and what is attached to them.

    Attributes:
        images: images checked.
        signed: of those, images with at least one signature.
        attested: images with at least one attestation.
        sbom: images with at least one SBOM.
        referrers_api: whether the registry answered the referrers API (``False``: the
            tag schema was read instead).
    """

    images: int
    signed: int
    attested: int
    sbom: int
    referrers_api: bool


class CoverageResults:
    """The last completed check of one region, by repository (read at scrape)."""

    def __init__(self) -> None:
        self.repositories: dict[str, RepositoryCoverage] = {}


class RegionState:
    """One region's client and the facts its probes discover about the registry.

    Args:
        config: the region's configuration.
        client: the client to use (defaults to :func:`client_for`).
        upstream: the state of the region a pull-through cache caches.
    """

    def __init__(
        self,
        config: RegionConfig,
        client: RegistryClient | None = None,
        upstream: RegionState | None = None,
    ) -> None:
        self.config = config
        self.client = client or client_for(config)
        self.upstream = upstream
        """For a pull-through cache: the region it caches (where test content is pushed)."""
        self.delete_supported: bool | None = None
        self.canary_digest: str | None = None
        self.coverage = CoverageResults()
        """The last coverage check (M10) of the configured repositories."""
        self.rollback: tuple[RollbackTargets, RollbackResults] | None = None
        """With a ``rollback:`` section: the remembered targets and the last check."""

    @property
    def name(self) -> str:
        """The region name."""
        return self.config.name

    @property
    def repository(self) -> str:
        """The probe repository."""
        return self.config.probe.repository

    def note_delete_unsupported(self, detail: str) -> None:
        """Remember (and say once) that this registry refuses deletes."""
        if self.delete_supported is not False:
            log.warning(
                "registry refuses deletes: push probes now overwrite one fixed tag instead "
                "of creating unique tags; blobs accumulate until the registry runs garbage "
                "collection with deletes enabled",
                region=self.name,
                repository=self.repository,
                detail=detail,
            )
        self.delete_supported = False

    async def aclose(self) -> None:
        """Close the client."""
        await self.client.aclose()
