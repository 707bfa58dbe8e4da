"""The one configuration model: a YAML file, overridable by ``REGISTRY_SLO_*`` variables.

Unknown keys are errors, durations and sizes take human units, and secrets are read from
files or environment variables only, held as :class:`~pydantic.SecretStr` so they are
never printed.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from registry_slo._names import label_value, repository_name, tag_name
from registry_slo._units import ByteSize, Duration
from registry_slo.ingest.config import IngestConfig
from registry_slo.sli.spec import (
    SLI_KINDS,
    AlertingConfig,
    SLOSpec,
    SLOTopology,
    check_alerting,
    check_slos,
)

__all__ = [
    "AuthConfig",
    "BasicAuth",
    "ConfigError",
    "NoAuth",
    "OtelConfig",
    "ProbeConfig",
    "ProbeKind",
    "RegionConfig",
    "ReplicationConfig",
    "SLOEngineConfig",
    "Settings",
    "TLSConfig",
    "default_state_dir",
    "load_config",
]

ENV_PREFIX = "REGISTRY_SLO_"
ProbeKind = Literal["push", "pull", "auth", "cache"]
PROBE_KINDS: tuple[ProbeKind, ...] = ("push", "pull", "auth")
CACHE_PROBE_KINDS: tuple[ProbeKind, ...] = ("pull", "auth", "cache")


class ConfigError(Exception):
    """A configuration file that cannot be used; the message names the file and the key."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _read_secret(file: Path | None, env: str | None, what: str) -> SecretStr:
    if (file is None) == (env is None):
        raise ValueError(f"set exactly one of {what}_file or {what}_env")
    if file is not None:
        try:
            return SecretStr(file.read_text(encoding="utf-8").rstrip("\r\n"))
        except OSError as exc:
            raise ValueError(f"{what}_file: cannot read {file}: {exc.strerror}") from None
    assert env is not None
    if env not in os.environ:
        raise ValueError(f"{what}_env: environment variable {env} is not set")
    return SecretStr(os.environ[env])


class NoAuth(_Strict):
    """Anonymous access; Bearer token challenges are still answered anonymously."""

    type: Literal["none"] = "none"


class BasicAuth(_Strict):
    """Username and password, sent as Basic auth or exchanged for a Bearer token."""

    type: Literal["basic"]
    username: str = Field(min_length=1)
    password_file: Path | None = None
    password_env: str | None = None
    password: SecretStr = Field(default=SecretStr(""), exclude=True, repr=False)

    @model_validator(mode="after")
    def _load_password(self) -> BasicAuth:
        object.__setattr__(
            self, "password", _read_secret(self.password_file, self.password_env, "password")
        )
        return self


AuthConfig = Annotated[NoAuth | BasicAuth, Field(discriminator="type")]


class TLSConfig(_Strict):
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


class ProbeConfig(_Strict):
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


class RegionConfig(_Strict):
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

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return label_value(value)

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"{value!r} must be an http:// or https:// URL")
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
        return CACHE_PROBE_KINDS if self.pull_through_cache_of else PROBE_KINDS


class ReplicationConfig(_Strict):
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


class OtelConfig(_Strict):
    """OpenTelemetry: probe traces and OTLP metrics. Off by default.

    Unset fields fall back to the standard ``OTEL_EXPORTER_OTLP_*`` environment variables
    (endpoint, protocol, headers, certificate), as the OTLP exporters define them.
    """

    traces: bool = False
    metrics: bool = False
    endpoint: str | None = Field(
        default=None, description="e.g. http://collector:4317; else OTEL_EXPORTER_OTLP_ENDPOINT"
    )
    protocol: Literal["grpc", "http/protobuf"] | None = Field(
        default=None, description="else OTEL_EXPORTER_OTLP_PROTOCOL, else grpc"
    )
    headers: dict[str, str] = Field(default_factory=dict)
    ca_file: Path | None = None
    service_name: str = "registry-slo"
    max_queue_size: int = Field(default=2048, ge=1)
    export_timeout: Duration = 10.0
    metrics_interval: Duration = 30.0

    @field_validator("ca_file")
    @classmethod
    def _file(cls, value: Path | None) -> Path | None:
        if value is not None and not value.is_file():
            raise ValueError(f"no such file {value}")
        return value

    @field_validator("endpoint")
    @classmethod
    def _endpoint(cls, value: str | None) -> str | None:
        if value is not None and urlsplit(value).scheme not in ("http", "https"):
            raise ValueError(f"{value!r} must be an http:// or https:// URL")
        return value

    @property
    def effective_protocol(self) -> str:
        """The OTLP protocol: this setting, else ``OTEL_EXPORTER_OTLP_PROTOCOL``, else grpc."""
        return self.protocol or os.environ.get("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")


class SLOEngineConfig(_Strict):
    """The exporter's own SLI engine (``/api/v1/slo``, the status page, SLO gauges)."""

    flush_interval: Duration = Field(
        default=10.0,
        description="how often window counts are written to the store in state_dir; a "
        "crash loses at most this much",
    )
    lag_sample_interval: Duration = Field(
        default=15.0, description="replication-lag SLIs: how often the lag is sampled"
    )

    @field_validator("flush_interval", "lag_sample_interval")
    @classmethod
    def _interval(cls, value: float) -> float:
        if not 0.1 <= value <= 3600:
            raise ValueError("must be between 100ms and 1h")
        return value


def default_state_dir() -> Path:
    """``$STATE_DIRECTORY`` (systemd), else ``$XDG_STATE_HOME/registry-slo``, else
    ``~/.local/state/registry-slo``."""
    systemd = os.environ.get("STATE_DIRECTORY")
    if systemd:
        return Path(systemd.split(":")[0])
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "registry-slo"


class Defaults(_Strict):
    """Sections merged under every region's own settings."""

    auth: dict[str, Any] | None = None
    tls: dict[str, Any] | None = None
    probe: dict[str, Any] | None = None


class Settings(BaseSettings):
    """The exporter's configuration."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, env_nested_delimiter="__", extra="forbid", frozen=True
    )

    listen: str = "127.0.0.1:9731"
    log_format: Literal["auto", "json", "console"] = "auto"
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    defaults: Defaults = Defaults()
    regions: tuple[RegionConfig, ...] = ()
    slos: tuple[SLOSpec, ...] = ()
    alerting: AlertingConfig = AlertingConfig()
    replication: ReplicationConfig = ReplicationConfig()
    ingest: IngestConfig = IngestConfig()
    otel: OtelConfig = OtelConfig()
    state_dir: Path | None = Field(
        default=None,
        description="where state that must survive a restart is kept (the SLO windows); "
        "default: see default_state_dir",
    )
    slo_engine: SLOEngineConfig = SLOEngineConfig()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Environment variables override what the file says.
        return (env_settings, init_settings)

    @model_validator(mode="before")
    @classmethod
    def _apply_defaults(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        defaults = data.get("defaults") or {}
        regions = data.get("regions")
        if not isinstance(defaults, dict) or not isinstance(regions, list | tuple):
            return data
        merged = []
        for region in regions:
            if isinstance(region, dict):
                region = dict(region)
                for section in ("auth", "tls", "probe"):
                    base = defaults.get(section)
                    if isinstance(base, dict):
                        own = region.get(section)
                        region[section] = {**base, **own} if isinstance(own, dict) else (
                            base if own is None else own
                        )
            merged.append(region)
        return {**data, "regions": merged}

    @field_validator("listen")
    @classmethod
    def _listen(cls, value: str) -> str:
        listen_address(value)
        return value

    @model_validator(mode="after")
    def _check(self) -> Settings:
        seen: set[str] = set()
        for region in self.regions:
            if region.name in seen:
                raise ValueError(f"regions: the name {region.name!r} is used twice")
            seen.add(region.name)
        for index, region in enumerate(self.regions):
            for key in ("replicates_from", "pull_through_cache_of"):
                other = getattr(region, key)
                if other is not None and (other not in seen or other == region.name):
                    raise ValueError(
                        f"regions[{index}].{key}: {other!r} is not another configured region"
                    )
        check_slos(self.slos, self.slo_topology())
        check_alerting(self.alerting, [r.name for r in self.regions])
        return self

    def slo_topology(self) -> SLOTopology:
        """What the SLOs apply to: regions, their probes, mirrors and ingest sources."""
        return SLOTopology(
            region_probes={r.name: r.probes for r in self.regions},
            mirrors=[r.name for r in self.regions if r.replicates_from],
            log_sources={s.name: s.region for s in self.ingest.logs},
            event_sources={e.name: e.region for e in self.ingest.notifications.endpoints},
        )

    @property
    def state_path(self) -> Path:
        """The state directory in effect (``state_dir`` or :func:`default_state_dir`)."""
        return self.state_dir or default_state_dir()

    def sources(self) -> list[RegionConfig]:
        """Regions that some mirror replicates from (where heartbeats are written)."""
        names = {r.replicates_from for r in self.regions if r.replicates_from}
        return [r for r in self.regions if r.name in names]

    def region(self, name: str) -> RegionConfig:
        """Return the region called ``name``."""
        for region in self.regions:
            if region.name == name:
                return region
        raise KeyError(name)


def listen_address(listen: str) -> tuple[str, int]:
    """Split ``host:port`` (IPv6 hosts in brackets) into its parts."""
    host, sep, port = listen.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"{listen!r} must be host:port")
    return host.strip("[]") or "0.0.0.0", int(port)  # noqa: S104 - an empty host means all


class _UniqueKeyLoader(yaml.SafeLoader):
    """A YAML loader that refuses a key given twice in one mapping."""


def _construct_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"key {key!r} is given twice", key_node.start_mark
            )
        seen.add(key)
    return loader.construct_mapping(node)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def _format_location(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part in ("basic", "none") and out.endswith("auth"):
            continue  # the discriminated-union branch name is noise to a user
        elif part in SLI_KINDS and out.endswith("sli"):
            continue  # likewise the SLI kind
        else:
            out += f".{part}" if out else str(part)
    return out or "(top level)"


def _format_validation_error(exc: ValidationError, source: str) -> str:
    lines = [f"{source}: invalid configuration ({exc.error_count()} error(s))"]
    for error in exc.errors(include_url=False):
        key = _format_location(error["loc"])
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            message = "unknown key"
        lines.append(f"  {source}: {key}: {message}")
    overridden = sorted(k for k in os.environ if k.startswith(ENV_PREFIX))
    if overridden:
        lines.append(f"  (environment overrides in effect: {', '.join(overridden)})")
    return "\n".join(lines)


def load_config(path: str | Path | None) -> Settings:
    """Load and validate the configuration.

    Args:
        path: the YAML file, or ``None`` for environment variables and defaults only.

    Returns:
        The validated settings.

    Raises:
        ConfigError: naming the file and the key that is wrong.
    """
    data: Any = {}
    source = str(path) if path is not None else "environment"
    if path is not None:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"{source}: cannot read the configuration: {exc.strerror}") from None
        try:
            data = yaml.load(text, Loader=_UniqueKeyLoader) or {}  # noqa: S506 - a SafeLoader
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
            where = f":{mark.line + 1}:{mark.column + 1}" if mark is not None else ""
            problem = getattr(exc, "problem", None) or str(exc)
            raise ConfigError(f"{source}{where}: not valid YAML: {problem}") from None
        if not isinstance(data, dict):
            raise ConfigError(f"{source}: the top level must be a mapping of keys")
    try:
        return Settings(**data)
    except ValidationError as exc:
        raise ConfigError(_format_validation_error(exc, source)) from None
