"""The regions: registry endpoints, their credentials, TLS and probes, and replication."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, SecretStr, field_validator, model_validator

from registry_slo._names import label_value, repository_name, tag_name
from registry_slo._units import ByteSize, Duration
from registry_slo.config._base import Strict, check_http_url, read_secret
from registry_slo.vocabulary import ProbeKind

__all__ = [
    "CACHE_PROBE_KINDS",
    "DEFAULT_PROBE_KINDS",
    "AuthConfig",
    "BasicAuth",
    "CoverageConfig",
    "NoAuth",
    "ProbeConfig",
    "RegionConfig",
    "ReplicationConfig",
    "RollbackConfig",
    "TLSConfig",
]

DEFAULT_PROBE_KINDS: tuple[ProbeKind, ...] = ("push", "pull", "auth")
"""The probes of a region without a role."""
CACHE_PROBE_KINDS: tuple[ProbeKind, ...] = ("pull", "auth", "cache")
"""The probes of a pull-through cache."""


class NoAuth(Strict):
    """Anonymous access; Bearer token challenges are still answered anonymously."""

    type: Literal["none"] = "none"


class BasicAuth(Strict):
    """Username and password, sent as Basic auth or exchanged for a Bearer token."""

    type: Literal["basic"]
    username: str = Field(min_length=1)
    password_file: Path | None = None
    password_env: str | None = None
    password: SecretStr = Field(default=SecretStr(""), exclude=True, repr=False)

    @model_validator(mode="before")
    @classmethod
    def _no_inline_password(cls, data: Any) -> Any:
        if isinstance(data, dict) and "password" in data:
            raise ValueError("password: secrets are not written in the configuration; "
                             "use password_file or password_env")
        return data

    @model_validator(mode="after")
    def _load_password(self) -> BasicAuth:
        object.__setattr__(
            self, "password", read_secret(self.password_file, self.password_env, "password")
        )
        return self


AuthConfig = Annotated[NoAuth | BasicAuth, Field(discriminator="type")]


class TLSConfig(Strict):
    """TLS settings for an ``https://`` region."""

    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None
    insecure_skip_verify: bool = False

    @field_validator("ca_file", "cert_file", "key_file")
    @classmethod
    def _file(cls, value: Path | None) -> Path | None:
        if value is not None and not value.is_file():
            raise ValueError(f"no such file {value}")
        return value

    @model_validator(mode="after")
    def _check_files(self) -> TLSConfig:
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("cert_file and key_file go together")
        return self


class ProbeConfig(Strict):
    """What a region's synthetic probes do and how often."""

    repository: str = "registry-slo/probe"
    interval: Duration = 30.0
    timeout: Duration = 10.0
    jitter: Duration | None = Field(
        default=None, description="random delay added to each run; default 10% of interval"
    )
    blob_size: ByteSize = 1 << 20
    chunk_size: ByteSize = Field(
        default=8 << 20, description="blobs larger than this are uploaded in PATCH chunks"
    )
    enabled: tuple[ProbeKind, ...] | None = Field(
        default=None,
        description="probes to run; default push, pull, auth (pull, auth, cache for a cache)",
    )
    canary_tag: str = "canary"
    pull_method: Literal["get", "head"] = Field(
        default="get",
        description="head: the pull probe resolves the canary by tag and by digest and "
        "checks its blobs with HEAD only, downloading and verifying nothing, for "
        "registries that meter pulls (Docker Hub counts manifest GETs, not HEADs): "
        "probing does not spend the quota it measures",
    )

    @field_validator("repository")
    @classmethod
    def _repository(cls, value: str) -> str:
        return repository_name(value)

    @field_validator("canary_tag")
    @classmethod
    def _tag(cls, value: str) -> str:
        return tag_name(value)

    @field_validator("interval")
    @classmethod
    def _interval(cls, value: float) -> float:
        if value < 1:
            raise ValueError("must be at least 1s")
        return value

    @field_validator("blob_size")
    @classmethod
    def _blob_size(cls, value: int) -> int:
        if value < 1:
            raise ValueError("must be at least 1 byte")
        return value

    @field_validator("chunk_size")
    @classmethod
    def _chunk_size(cls, value: int) -> int:
        if value < 1024:
            raise ValueError("must be at least 1KiB")
        return value

    @field_validator("enabled")
    @classmethod
    def _enabled(cls, value: tuple[str, ...] | None) -> tuple[str, ...] | None:
        if value is not None and len(set(value)) != len(value):
            raise ValueError("lists a probe twice")
        return value

    @model_validator(mode="after")
    def _check(self) -> ProbeConfig:
        if not 0 < self.timeout <= self.interval:
            raise ValueError(
                f"timeout ({self.timeout:g}s) must be positive and not longer than "
                f"interval ({self.interval:g}s)"
            )
        return self

    @property
    def effective_jitter(self) -> float:
        """Seconds of random delay added to each scheduled run."""
        return self.interval * 0.1 if self.jitter is None else self.jitter


class _RepositoryCheck(Strict):
    """What the opt-in scheduled checks of some repositories share: the repositories,
    and a timeout no longer than the interval."""

    repositories: tuple[str, ...] = Field(min_length=1)
    interval: Duration
    timeout: Duration

    @field_validator("repositories")
    @classmethod
    def _repositories(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if len(set(value)) != len(value):
            raise ValueError("lists a repository twice")
        return tuple(repository_name(r) for r in value)

    @model_validator(mode="after")
    def _timeout(self) -> _RepositoryCheck:
        if not 0 < self.timeout <= self.interval:
            raise ValueError(
                f"timeout ({self.timeout:g}s) must be positive and not longer than "
                f"interval ({self.interval:g}s)")
        return self


class CoverageConfig(_RepositoryCheck):
    """Opt-in: how many recent images of some repositories are signed, attested and
    have an SBOM (M10), asked of the registry (the referrers API, else the tag schema)."""

    tags: int = Field(
        default=20, ge=1, le=1000,
        description="images checked per repository: the last this many of its tags in "
        "natural order (numbers as numbers: versions and dates put the newest last), "
        "signature and referrers-index tags left out",
    )
    interval: Duration = 3600.0
    timeout: Duration = 120.0



class RollbackConfig(_RepositoryCheck):
    """Opt-in (M16, "broken rollback"): remember the digests deployments could roll back
    to, and check on a schedule that the registry still holds them.

    Rollback targets come from what this region's ingest sources and notifications see
    in ``repositories``: digests pulled by digest, and digests pushed under a tag (the
    digest a tag pointed at before a push moved it is that tag's rollback target).
    """

    protected_tags: tuple[str, ...] = Field(
        default=(),
        description="tags whose previous digest must stay (RegistryRollbackTargetGone "
        "pages when it is gone), e.g. [prod, stable]",
    )
    keep: int = Field(default=5, ge=1, le=100,
                      description="rollback targets checked per repository: the newest")
    window: Duration = Field(default=30 * 86400.0,
                             description="targets not seen for this long are forgotten")
    interval: Duration = 600.0
    timeout: Duration = 60.0


    @field_validator("protected_tags")
    @classmethod
    def _tags(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(tag_name(t) for t in value)

    @model_validator(mode="after")
    def _window(self) -> RollbackConfig:
        if self.window < self.interval:
            raise ValueError(f"window ({self.window:g}s) must not be shorter than "
                             f"interval ({self.interval:g}s)")
        return self


class RegionConfig(Strict):
    """One registry endpoint; ``name`` becomes the ``region`` label."""

    name: str
    url: str
    auth: AuthConfig = NoAuth()
    tls: TLSConfig = TLSConfig()
    probe: ProbeConfig = ProbeConfig()
    replicates_from: str | None = Field(
        default=None, description="the region this one is a mirror of (replication lag)"
    )
    pull_through_cache_of: str | None = Field(
        default=None, description="the region this one is a pull-through cache of"
    )
    debug_vars_url: str | None = Field(
        default=None,
        description="the registry's /debug/vars (distribution's http.debug.addr), read for "
        "pull-through cache hit/miss counters",
    )
    coverage: CoverageConfig | None = None
    rollback: RollbackConfig | None = None

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return label_value(value)

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        parts = check_http_url(value)
        if parts.path not in ("", "/") or parts.query:
            raise ValueError(f"{value!r} must not have a path; /v2/ is added")
        return value

    @model_validator(mode="after")
    def _check_roles(self) -> RegionConfig:
        if self.replicates_from and self.pull_through_cache_of:
            raise ValueError("a region is either a mirror (replicates_from) or a "
                             "pull-through cache (pull_through_cache_of), not both")
        enabled = self.probe.enabled or ()
        if self.pull_through_cache_of and "push" in enabled:
            raise ValueError("probe.enabled: a pull-through cache refuses pushes; "
                             "use pull, auth and cache")
        if not self.pull_through_cache_of and "cache" in enabled:
            raise ValueError("probe.enabled: the cache probe needs pull_through_cache_of")
        return self

    @property
    def base_url(self) -> str:
        """The URL without a trailing slash."""
        return self.url.rstrip("/")

    @property
    def probes(self) -> tuple[ProbeKind, ...]:
        """The probes this region runs (``probe.enabled`` or the default for its role)."""
        if self.probe.enabled is not None:
            return self.probe.enabled
        return CACHE_PROBE_KINDS if self.pull_through_cache_of else DEFAULT_PROBE_KINDS


class ReplicationConfig(Strict):
    """Heartbeat canaries for replication lag (the pt-heartbeat model)."""

    mode: Literal["both", "write", "read", "off"] = Field(
        default="both",
        description="write heartbeats to source regions, read them on mirrors, or both",
    )
    heartbeat_interval: Duration = 10.0
    timeout: Duration = 5.0
    tag: str = "registry-slo-heartbeat"
    writer: str | None = Field(
        default=None, description="this instance's identity in heartbeats; default hostname"
    )

    @field_validator("tag")
    @classmethod
    def _tag(cls, value: str) -> str:
        return tag_name(value)

    @field_validator("heartbeat_interval")
    @classmethod
    def _interval(cls, value: float) -> float:
        if value < 1:
            raise ValueError("must be at least 1s")
        return value

    @model_validator(mode="after")
    def _check(self) -> ReplicationConfig:
        if not 0 < self.timeout <= self.heartbeat_interval:
            raise ValueError("timeout must be positive and not longer than heartbeat_interval")
        return self

    @property
    def writes(self) -> bool:
        """Whether this instance writes heartbeats."""
        return self.mode in ("both", "write")

    @property
    def reads(self) -> bool:
        """Whether this instance reads heartbeats on mirrors."""
        return self.mode in ("both", "read")
