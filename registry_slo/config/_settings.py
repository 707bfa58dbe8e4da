"""The whole configuration: every section, and the checks that span sections."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from registry_slo.config._alerting import AlertingConfig, check_alerting
from registry_slo.config._base import Strict
from registry_slo.config._ingest import IngestConfig
from registry_slo.config._kubernetes import KubernetesConfig
from registry_slo.config._prometheus import PrometheusConfig
from registry_slo.config._regions import RegionConfig, ReplicationConfig
from registry_slo.config._service import (
    Listen,
    OtelConfig,
    SLOEngineConfig,
    default_state_dir,
)
from registry_slo.config._slos import ProbeLatencySLI, SLOSpec, TrafficLatencySLI
from registry_slo.config._topology import SLOTarget, SLOTopology
from registry_slo.vocabulary import duration_buckets

__all__ = ["ENV_PREFIX", "Defaults", "Settings"]

ENV_PREFIX = "REGISTRY_SLO_"


class Defaults(Strict):
    """Sections merged under every region's own settings."""

    auth: dict[str, Any] | None = None
    tls: dict[str, Any] | None = None
    probe: dict[str, Any] | None = None


class Settings(BaseSettings):
    """The exporter's configuration."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, env_nested_delimiter="__", extra="forbid", frozen=True
    )

    listen: Listen = "127.0.0.1:9731"
    max_connections: int = Field(
        default=64, ge=1, le=65536,
        description="connections and requests the HTTP listener holds at once; beyond "
        "them it answers 503 (a scrape, a status page and the API need a few)",
    )
    web_config_file: Path | None = Field(
        default=None,
        description="a web configuration file (exporter-toolkit's format): TLS, client "
        "certificates, Basic users, headers, rate limit for every listener",
    )
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
    prometheus: PrometheusConfig = PrometheusConfig()
    kubernetes: KubernetesConfig | None = Field(
        default=None,
        description="rules, alerts and panels over the clusters' kubelet and "
        "kube-state-metrics series (image pulls as nodes see them)",
    )

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
        upstream = {r.name: r.replicates_from or r.pull_through_cache_of for r in self.regions}
        for index, region in enumerate(self.regions):
            chain = [region.name]
            while (up := upstream[chain[-1]]) is not None and up not in chain:
                chain.append(up)
            if up is not None:
                key = "replicates_from" if region.replicates_from else "pull_through_cache_of"
                raise ValueError(
                    f"regions[{index}].{key}: a cycle, {' -> '.join([*chain, up])}: some "
                    "region must be the origin"
                )
        self.slo_topology().check(self.slos)
        check_alerting(self.alerting, [r.name for r in self.regions])
        return self

    def slo_topology(self) -> SLOTopology:
        """What the SLOs apply to: regions, their probes, mirrors and ingest sources."""
        return SLOTopology(
            region_probes={r.name: r.probes for r in self.regions},
            mirrors=[r.name for r in self.regions if r.replicates_from],
            log_sources={s.name: s.region for s in self.ingest.traffic_logs},
            event_sources={e.name: e.region for e in self.ingest.notifications.endpoints},
            probe_intervals={r.name: r.probe.interval for r in self.regions},
        )

    def duration_buckets(self) -> tuple[float, ...]:
        """The duration histograms' boundaries: the standard ones, and close neighbours of
        every latency SLO's threshold (:func:`registry_slo.vocabulary.duration_buckets`)."""
        return duration_buckets(
            slo.sli.threshold for slo in self.slos
            if isinstance(slo.sli, ProbeLatencySLI | TrafficLatencySLI))

    def slo_targets(self) -> list[SLOTarget]:
        """Every (SLO, region) the SLOs apply to, in configuration order."""
        return self.slo_topology().targets(self.slos)

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
