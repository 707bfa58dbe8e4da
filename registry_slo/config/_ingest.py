"""The ``ingest`` section of the configuration: log files to follow and how to label.

Example::

    ingest:
      checkpoint_dir: /var/lib/registry-slo/checkpoints
      repositories: {top_n: 20}          # or {allow: ["library/*", "team/app"]}
      logs:
        - name: us-east-registry
          region: us-east
          format: distribution
          paths: ["/var/log/registry/registry.log*"]
          read_from: end
      notifications:                     # registries POST their events here
        listen: 127.0.0.1:9732
        bearer_token_file: /etc/registry-slo/webhook-token
        endpoints:
          - {name: us-east-events, region: us-east, format: distribution}
      filesystems:                       # storage use (M7) of a co-located registry
        - {name: us-east-storage, region: us-east, path: /var/lib/docker-registry}
"""

from __future__ import annotations

import os
import re
from collections.abc import Collection
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator

from registry_slo._names import label_value
from registry_slo._units import ByteSize, Duration
from registry_slo.config._base import Strict
from registry_slo.config._service import Listen, default_state_dir
from registry_slo.vocabulary import OPERATIONS

__all__ = [
    "FORMAT_NAMES",
    "FilesystemSourceConfig",
    "IngestConfig",
    "JsonlMapping",
    "LogFormat",
    "LogSourceConfig",
    "NotificationEndpoint",
    "NotificationFormat",
    "NotificationsConfig",
    "RepositoryLabels",
    "ScrapeFormat",
    "ScrapeSourceConfig",
    "default_checkpoint_dir",
]

LogFormat = Literal[
    "distribution", "distribution-access", "harbor-audit", "zot-audit", "jsonl",
    "kubernetes-events", "distribution-gc",
]
FORMAT_NAMES: tuple[LogFormat, ...] = (
    "distribution", "distribution-access", "harbor-audit", "zot-audit", "jsonl",
    "kubernetes-events", "distribution-gc",
)





class JsonlMapping(Strict):
    """Where a ``jsonl`` source finds each field (``a.b`` looks up the key ``a.b``, then
    the nested ``a`` → ``b``).

    Either ``operation`` (mapped through ``operations``) or ``method`` and ``path``
    (classified like any registry request) say what the operation is; ``status`` (an HTTP
    status) or ``success`` (a boolean) say how it went.
    """

    time: str | None = Field(default=None, description="timestamp field; default: read time")
    time_format: Literal["rfc3339", "unix", "unix_ms"] = "rfc3339"
    operation: str | None = None
    operations: dict[str, str] = Field(
        default_factory=dict, description="raw operation value → registry-slo operation"
    )
    method: str | None = None
    path: str | None = None
    status: str | None = None
    success: str | None = None
    duration: str | None = None
    duration_unit: Literal["s", "ms", "us", "ns", "go"] = "s"
    repository: str | None = None
    tag: str | None = None
    digest: str | None = None
    user_agent: str | None = None
    bytes_sent: str | None = None
    bytes_received: str | None = None

    @model_validator(mode="after")
    def _check(self) -> JsonlMapping:
        if self.operation is None and (self.method is None or self.path is None):
            raise ValueError("set operation, or both method and path")
        if self.status is None and self.success is None:
            raise ValueError("set status or success")
        unknown = sorted(set(self.operations.values()) - set(OPERATIONS))
        if unknown:
            raise ValueError(
                f"operations: unknown operation(s) {', '.join(unknown)} "
                f"(known: {', '.join(OPERATIONS)})"
            )
        return self


_REGISTRY_HOST = re.compile(
    r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*"
    r"|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?"
)


class _Source(Strict):
    """What every ingest source has: its name (the ``source`` label) and the region
    whose registry it reads, both valid label values."""

    name: str = Field(description="the source label")
    region: str = Field(description="the region label of what it reports")

    @field_validator("name", "region")
    @classmethod
    def _labels(cls, value: str) -> str:
        return label_value(value)


class LogSourceConfig(_Source):
    """One log to follow: files (globs) in one format, for one region."""

    name: str = Field(description="the source label; also names the checkpoint file")
    format: LogFormat
    paths: tuple[str, ...] = Field(min_length=1, description="files or globs")
    exclude: tuple[str, ...] = Field(
        default=("*.gz", "*.bz2", "*.xz", "*.zst", "*.zip"),
        description="file name globs never read (compressed rotations by default)",
    )
    read_from: Literal["beginning", "end"] = Field(
        default="end",
        description="where to start in files found at the first start without a checkpoint; "
        "files that appear later are always read from the beginning",
    )
    max_line_bytes: ByteSize = 64 << 10
    mapping: JsonlMapping | None = None
    registries: tuple[str, ...] | None = Field(
        default=None,
        min_length=1,
        description="kubernetes-events only: the registry hosts (host or host:port, as "
        "image references name them; docker.io for Docker Hub) whose pulls this source "
        "counts for its region; images of other registries are ignored",
    )

    @field_validator("paths")
    @classmethod
    def _paths(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for path in value:
            if not Path(path).is_absolute():
                raise ValueError(f"{path!r} must be an absolute path")
        return value

    @field_validator("registries")
    @classmethod
    def _registries(cls, value: tuple[str, ...] | None) -> tuple[str, ...] | None:
        for host in value or ():
            if not _REGISTRY_HOST.fullmatch(host):
                raise ValueError(
                    f"{host!r} must be a registry host as image references name it "
                    "(registry.example.com, registry.example.com:5000, docker.io)"
                )
        return value

    @field_validator("max_line_bytes")
    @classmethod
    def _max_line(cls, value: int) -> int:
        if not 256 <= value <= 64 << 20:
            raise ValueError("must be between 256B and 64MiB")
        return value

    @model_validator(mode="after")
    def _check(self) -> LogSourceConfig:
        if (self.format == "jsonl") != (self.mapping is not None):
            raise ValueError("mapping: required for format jsonl, and only for it")
        if (self.format == "kubernetes-events") != (self.registries is not None):
            raise ValueError("registries: required for format kubernetes-events, and only "
                             "for it")
        if self.name == "probe":
            raise ValueError("name: 'probe' is the probes' own source name")
        return self

    @property
    def reads_traffic(self) -> bool:
        """Whether its lines are registry operations (every format but
        ``distribution-gc``, whose lines are garbage collection runs)."""
        return self.format != "distribution-gc"


NotificationFormat = Literal["distribution", "harbor"]


class NotificationEndpoint(_Source):
    """One webhook endpoint: a registry (region) POSTs its events here."""

    format: NotificationFormat = Field(
        description="distribution: notification envelopes (events.v1+json, v2+json); "
        "harbor: Harbor webhooks (Default or CloudEvents payload)"
    )
    path: str | None = Field(default=None, description="default: /notifications/<name>")

    @field_validator("path")
    @classmethod
    def _path(cls, value: str | None) -> str | None:
        if value is not None and (not value.startswith("/") or value in ("/", "/healthz")):
            raise ValueError(f"{value!r} must be an absolute URL path other than / and /healthz")
        return value

    @property
    def route(self) -> str:
        """The URL path the endpoint answers on."""
        return self.path or f"/notifications/{self.name}"


class NotificationsConfig(Strict):
    """The webhook receiver: its own listener, so the registries never reach /metrics."""

    listen: Listen = "127.0.0.1:9732"
    bearer_token_file: Path | None = None
    bearer_token_env: str | None = None
    max_body_bytes: ByteSize = 1 << 20
    dedup_memory: int = Field(default=100_000, ge=1, description="event ids remembered")
    max_connections: int = Field(
        default=64, ge=1, le=65536,
        description="connections and requests the receiver holds at once; beyond them "
        "it answers 503, which registries retry",
    )
    endpoints: tuple[NotificationEndpoint, ...] = ()

    @model_validator(mode="after")
    def _check(self) -> NotificationsConfig:
        if self.bearer_token_file is not None and self.bearer_token_env is not None:
            raise ValueError("set at most one of bearer_token_file and bearer_token_env")
        if self.bearer_token_file is not None and not self.bearer_token_file.is_file():
            raise ValueError(f"bearer_token_file: no such file {self.bearer_token_file}")
        if self.bearer_token_env is not None and self.bearer_token_env not in os.environ:
            raise ValueError(f"bearer_token_env: {self.bearer_token_env} is not set")
        routes = [e.route for e in self.endpoints]
        if len(set(routes)) != len(routes):
            raise ValueError("endpoints: two endpoints share a path")
        return self

    def bearer_token(self) -> str | None:
        """The token registries must send (``Authorization: Bearer …``), if one is set."""
        if self.bearer_token_file is not None:
            return self.bearer_token_file.read_text(encoding="utf-8").strip()
        if self.bearer_token_env is not None:
            return os.environ[self.bearer_token_env]
        return None


class RepositoryLabels(Strict):
    """Which repositories get their own ``repository`` label; the rest are ``other``.

    With ``allow``, exactly the repositories matching one of its glob patterns; otherwise
    the ``top_n`` busiest of each region (``0``: none).
    """

    allow: tuple[str, ...] | None = None
    top_n: int = Field(default=20, ge=0, le=1000)

    @model_validator(mode="after")
    def _check(self) -> RepositoryLabels:
        if self.allow is not None and "top_n" in self.model_fields_set:
            raise ValueError("set allow or top_n, not both")
        return self


def default_checkpoint_dir() -> Path:
    """``checkpoints`` under the default state directory (see
    :func:`~registry_slo.config.default_state_dir`)."""
    return default_state_dir() / "checkpoints"


ScrapeFormat = Literal["distribution", "harbor", "zot"]


class ScrapeSourceConfig(_Source):
    """A registry's own metrics endpoint, read on an interval.

    ``distribution``: distribution's ``registry_http_*`` metrics (``http.debug.addr``
    with ``prometheus.enabled``), which Harbor's registry component serves too;
    ``harbor``: Harbor's exporter (project quota usage); ``zot``: zot's ``zot_*``.
    """

    url: str
    format: ScrapeFormat
    interval: Duration = 15.0
    timeout: Duration = 5.0

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError(f"{value!r} must be an http:// or https:// URL")
        return value

    @model_validator(mode="after")
    def _check(self) -> ScrapeSourceConfig:
        if not 0 < self.timeout <= self.interval:
            raise ValueError("timeout must be positive and not longer than interval")
        return self


class FilesystemSourceConfig(_Source):
    """The filesystem holding a registry's storage (distribution's ``filesystem``
    driver, zot's ``rootDirectory``), read with ``statvfs`` at every scrape: its used
    and total bytes become the region's storage use and capacity (M7). Exact on a
    volume of its own; on a shared filesystem it counts everything on it."""

    path: Path = Field(description="a directory on that filesystem (absolute)")

    @field_validator("path")
    @classmethod
    def _absolute(cls, value: Path) -> Path:
        if not value.is_absolute():
            raise ValueError(f"{str(value)!r} must be an absolute path")
        return value


class IngestConfig(Strict):
    """What the exporter reads besides its probes."""

    checkpoint_dir: Path | None = Field(
        default=None, description="where read positions are kept; see default_checkpoint_dir"
    )
    poll_interval: Duration = 1.0
    rotate_wait: Duration = Field(
        default=10.0,
        description="how long a rotated-away or deleted file is still read after it stops "
        "growing (the writer may not have reopened its log yet)",
    )
    checkpoint_interval: Duration = 1.0
    tag_memory: int = Field(
        default=100_000, ge=0, description="tags remembered to detect overwrites"
    )
    repositories: RepositoryLabels = RepositoryLabels()
    logs: tuple[LogSourceConfig, ...] = ()
    notifications: NotificationsConfig = NotificationsConfig()
    scrapes: tuple[ScrapeSourceConfig, ...] = ()
    filesystems: tuple[FilesystemSourceConfig, ...] = ()

    @field_validator("poll_interval", "checkpoint_interval")
    @classmethod
    def _interval(cls, value: float) -> float:
        if not 0.01 <= value <= 3600:
            raise ValueError("must be between 10ms and 1h")
        return value

    @model_validator(mode="after")
    def _check(self) -> IngestConfig:
        seen: set[str] = set()
        names = [s.name for s in self.logs] + [e.name for e in self.notifications.endpoints]
        names += [s.name for s in self.scrapes] + [f.name for f in self.filesystems]
        for name in names:
            if name in seen:
                raise ValueError(f"the source name {name!r} is used twice")
            seen.add(name)
        return self

    @property
    def traffic_logs(self) -> tuple[LogSourceConfig, ...]:
        """The log sources that read registry operations (the traffic SLIs' sources;
        not ``distribution-gc``)."""
        return tuple(s for s in self.logs if s.reads_traffic)

    @property
    def checkpoint_path(self) -> Path:
        """The checkpoint directory in effect."""
        return self.checkpoint_dir or default_checkpoint_dir()

    def for_regions(self, regions: Collection[str]) -> IngestConfig:
        """The same settings with only the sources that report one of ``regions`` (what
        an exporter serving those regions reads; see ``serve --region``)."""
        notifications = self.notifications.model_copy(update={
            "endpoints": tuple(e for e in self.notifications.endpoints if e.region in regions)
        })
        return self.model_copy(update={
            "logs": tuple(s for s in self.logs if s.region in regions),
            "notifications": notifications,
            "scrapes": tuple(s for s in self.scrapes if s.region in regions),
            "filesystems": tuple(s for s in self.filesystems if s.region in regions),
        })
