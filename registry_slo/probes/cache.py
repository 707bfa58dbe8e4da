"""Pull-through caches: cold pulls of content just pushed upstream (M13, F2).

Warm pulls are the cache region's ordinary pull probe (the canary stays cached). The cold
probe pushes a fresh small image to the upstream region, then pulls it through the cache,
which must fetch it from upstream. Upstream down: warm pulls keep succeeding from the
cache while cold ones fail, the push upstream naming the reason.
"""

from __future__ import annotations

from collections.abc import Callable

import httpx
import structlog

from registry_slo.oci import RegistryError
from registry_slo.probes._base import Outcome, Probe
from registry_slo.probes._content import Image, random_image
from registry_slo.probes._region import RegionState, ssl_context
from registry_slo.probes.pull import pull_and_verify

log = structlog.get_logger("registry_slo.probes")

COLD_TAG = "registry-slo-cache-cold"
"""The upstream tag the cold probe overwrites: one tag, whatever the run count."""

COLD_PAYLOAD = 4096
"""Payload bytes of a cold-pull image: small, since every run leaves one in the cache
until the cache's own TTL (``proxy.ttl``, a week by default in distribution) expires it."""


CounterSink = Callable[[str, str, dict[str, float]], None]
"""Receives ``(region, kind, {"Requests": n, "Hits": n, "Misses": n})``."""


async def read_debug_vars(client: httpx.AsyncClient, url: str) -> dict[str, dict[str, float]]:
    """The proxy counters from distribution's ``/debug/vars`` (``blob`` and ``manifest``)."""
    response = await client.get(url)
    response.raise_for_status()
    proxy = response.json().get("registry", {}).get("proxy", {})
    out: dict[str, dict[str, float]] = {}
    for key, kind in (("blobs", "blob"), ("manifests", "manifest")):
        values = proxy.get(key)
        if isinstance(values, dict):
            out[kind] = {k: float(v) for k, v in values.items() if isinstance(v, int | float)}
    return out


class ColdCacheProbe(Probe):
    """Pull, through the cache, an image pushed upstream just before (untimed).

    After each run it also reads the registry's own cache counters when the region has a
    ``debug_vars_url``, and hands them to ``counters``.
    """

    kind = "cache"

    def __init__(self, state: RegionState, counters: CounterSink | None = None) -> None:
        super().__init__(state.name)
        self.counters = counters
        if state.upstream is None:
            raise ValueError(f"region {state.name} is not a pull-through cache")
        self.state = state
        self.upstream: RegionState = state.upstream
        self._image: Image | None = None
        self._previous: Image | None = None

    async def prepare(self) -> None:
        image = random_image(COLD_PAYLOAD, "cache-cold")
        client, repository = self.upstream.client, self.upstream.repository
        for blob in (image.layer, image.config):
            await client.upload_blob(repository, blob.data, blob.digest)
        await client.put_manifest(repository, COLD_TAG, image.manifest.data, image.media_type)
        self._image = image

    async def run(self) -> Outcome:
        digest = await pull_and_verify(self.state.client, self.state.repository, COLD_TAG)
        return Outcome(repository=self.state.repository, digest=digest)

    async def cleanup(self) -> None:
        await self._read_counters()
        # Delete the previous run's image upstream; the tag now points at this run's.
        if self._image is None:
            return
        previous, self._previous = self._previous, self._image
        self._image = None
        if previous is None or self.upstream.delete_supported is False:
            return
        client, repository = self.upstream.client, self.upstream.repository
        try:
            await client.delete_manifest(repository, previous.manifest.digest)
            for blob in (previous.layer, previous.config):
                await client.delete_blob(repository, blob.digest)
        except RegistryError as exc:
            if exc.status == 405 or exc.oci_code == "UNSUPPORTED":
                self.upstream.note_delete_unsupported(exc.message)
            elif exc.status != 404:
                log.warning("could not delete an old cold-cache image", region=self.region,
                            reason=str(exc.reason), detail=exc.message)

    async def _read_counters(self) -> None:
        url = self.state.config.debug_vars_url
        if url is None or self.counters is None:
            return
        try:
            async with httpx.AsyncClient(
                timeout=self.state.config.probe.timeout, verify=ssl_context(self.state.config)
            ) as client:
                counters = await read_debug_vars(client, url)
        except (httpx.HTTPError, ValueError, AttributeError) as exc:
            log.warning("could not read the cache's counters", region=self.region, url=url,
                        detail=f"{type(exc).__name__}: {exc}")
            return
        for kind, values in counters.items():
            self.counters(self.region, kind, values)
