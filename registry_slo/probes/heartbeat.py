"""Replication lag by heartbeat canaries (the pt-heartbeat model; M6, F6).

A writer pushes a tiny image to each source region every ``heartbeat_interval``, under a
fixed tag, whose manifest annotations carry the write time (UTC, microseconds) and the
writer's identity. A reader fetches that tag from each mirror: the lag there is
``now - newest heartbeat time visible``, so it keeps growing while replication is stopped,
and writers and readers need no shared state (they may be different exporter instances).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import structlog

from registry_slo.oci import ProtocolViolation, RegistryError, media, phase
from registry_slo.probes._base import Outcome, Probe
from registry_slo.probes._content import Blob
from registry_slo.probes._region import RegionState

log = structlog.get_logger("registry_slo.probes")

TIME_ANNOTATION = "dev.registry-slo.heartbeat.time"
WRITER_ANNOTATION = "dev.registry-slo.heartbeat.writer"

# Constant, so a week of heartbeats stores one config blob, not one per beat.
_CONFIG = Blob.of(
    json.dumps(
        {"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": []},
         "config": {"Labels": {"org.opencontainers.image.vendor": "registry-slo"}}},
        sort_keys=True, separators=(",", ":"),
    ).encode()
)


def heartbeat_manifest(written_at: float, writer: str) -> bytes:
    """The manifest of one heartbeat (no layers; the config blob is constant)."""
    stamp = datetime.fromtimestamp(written_at, UTC).isoformat(timespec="microseconds")
    document = {
        "schemaVersion": 2,
        "mediaType": media.OCI_MANIFEST,
        "config": {"mediaType": media.OCI_CONFIG, "digest": _CONFIG.digest,
                   "size": len(_CONFIG.data)},
        "layers": [],
        "annotations": {TIME_ANNOTATION: stamp.replace("+00:00", "Z"), WRITER_ANNOTATION: writer},
    }
    return json.dumps(document, sort_keys=True, indent=2).encode()


def read_heartbeat(manifest: dict[str, object]) -> tuple[float, str]:
    """``(write time as Unix seconds, writer)`` from a heartbeat manifest."""
    annotations = manifest.get("annotations")
    if not isinstance(annotations, dict) or TIME_ANNOTATION not in annotations:
        raise ProtocolViolation(f"heartbeat manifest without the {TIME_ANNOTATION} annotation")
    try:
        written = datetime.fromisoformat(str(annotations[TIME_ANNOTATION])).timestamp()
    except ValueError as exc:
        raise ProtocolViolation(f"heartbeat time is not RFC 3339: {exc}") from exc
    return written, str(annotations.get(WRITER_ANNOTATION, ""))


class HeartbeatWriter(Probe):
    """Push a heartbeat to a source region, then delete the previous one."""

    kind = "heartbeat"

    def __init__(self, state: RegionState, tag: str, writer: str) -> None:
        super().__init__(state.name)
        self.state = state
        self.tag = tag
        self.writer = writer
        self._previous: str | None = None
        self._config_present = False

    async def run(self) -> Outcome:
        client, repository = self.state.client, self.state.repository
        if self._previous is None:
            self._previous = await client.head_manifest(repository, self.tag)
        with phase("upload"):
            if not self._config_present:
                if not await client.blob_exists(repository, _CONFIG.digest):
                    await client.upload_blob(repository, _CONFIG.data, _CONFIG.digest)
                self._config_present = True
        with phase("manifest"):
            body = heartbeat_manifest(time.time(), self.writer)
            digest = await client.put_manifest(repository, self.tag, body, media.OCI_MANIFEST)
        previous, self._previous = self._previous, digest
        if previous and previous != digest and self.state.delete_supported is not False:
            await self._delete(previous)
        return Outcome(repository=repository, digest=digest)

    async def _delete(self, digest: str) -> None:
        try:
            await self.state.client.delete_manifest(self.state.repository, digest)
        except RegistryError as exc:
            if exc.status == 405 or exc.oci_code == "UNSUPPORTED":
                self.state.note_delete_unsupported(exc.message)
            elif exc.status != 404:
                log.warning("could not delete an old heartbeat", region=self.region,
                            digest=digest, reason=str(exc.reason), detail=exc.message)


@dataclass
class LagTracker:
    """The newest heartbeat seen on one mirror, and the lag it implies."""

    region: str
    source_region: str
    newest: float | None = None
    writer: str | None = None
    now: Callable[[], float] = time.time
    checked: bool = False
    """Whether the reader has looked at the mirror yet (with or without success)."""

    def lag(self) -> float:
        """Seconds since the newest heartbeat visible on the mirror was written (NaN before
        the first one)."""
        return float("nan") if self.newest is None else max(0.0, self.now() - self.newest)

    def reading(self) -> float | None:
        """:meth:`lag`, or ``None`` before the reader first looked: a lag not yet read
        is not exported (a fresh exporter is not behind), while a mirror that was read
        and showed no heartbeat is (NaN: unknown counts as behind)."""
        return self.lag() if self.checked else None

    def see(self, written_at: float, writer: str) -> float | None:
        """Record a heartbeat; return its lag at first sight when it is newer than any seen."""
        if self.newest is not None and written_at <= self.newest:
            return None
        self.newest, self.writer = written_at, writer
        return max(0.0, self.now() - written_at)


class ReplicationReader(Probe):
    """Read the heartbeat tag on a mirror and update its lag."""

    kind = "replication"

    def __init__(
        self,
        state: RegionState,
        tracker: LagTracker,
        tag: str,
        on_first_sight: Callable[[LagTracker, float], None] | None = None,
    ) -> None:
        super().__init__(state.name)
        self.state = state
        self.tracker = tracker
        self.tag = tag
        self.on_first_sight = on_first_sight

    async def run(self) -> Outcome:
        try:
            return await self._read()
        finally:
            self.tracker.checked = True

    async def _read(self) -> Outcome:
        client, repository = self.state.client, self.state.repository
        with phase("manifest"):
            manifest = await client.get_manifest(repository, self.tag)
        written_at, writer = read_heartbeat(manifest.json())
        first_sight = self.tracker.see(written_at, writer)
        if first_sight is not None and self.on_first_sight is not None:
            self.on_first_sight(self.tracker, first_sight)
        return Outcome(repository=repository, digest=manifest.digest)
