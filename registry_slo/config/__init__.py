"""The one configuration model: a YAML file, overridable by ``REGISTRY_SLO_*`` variables.

Unknown keys are errors, durations and sizes take human units, and secrets are read from
files or environment variables only, held as :class:`~pydantic.SecretStr` so they are
never printed.

This package is the schema layer: pydantic models and the checks that span them, importing
only the vocabulary and the :class:`~registry_slo.observation.Observation` record. Every
subsystem may read the section it is handed; only the roots (the exporter, the command
line) see the whole :class:`Settings`. One module per section:

- ``_regions``: regions, credentials, TLS, probes, replication;
- ``_ingest``: log, notification, scrape and filesystem sources;
- ``_slos``: SLOs and their SLIs (and which events are bad);
- ``_topology``: what the SLOs apply to, and the (SLO, region) targets;
- ``_alerting``: receivers, rule mode, alert thresholds, maintenance windows;
- ``_prometheus``: the Prometheus that runs the generated rules (its intervals);
- ``_kubernetes``: rules over the clusters' kubelet and kube-state-metrics series;
- ``_service``: OpenTelemetry, the SLI engine, state directory, listen addresses;
- ``_web``: the web configuration file (exporter-toolkit's format) for the listeners;
- ``_settings`` and ``_load``: the whole, and reading it from a file.
"""

from __future__ import annotations

from registry_slo.config._alerting import AlertingConfig, MaintenanceWindow, Receiver
from registry_slo.config._ingest import (
    FORMAT_NAMES,
    FilesystemSourceConfig,
    IngestConfig,
    JsonlMapping,
    LogFormat,
    LogSourceConfig,
    NotificationEndpoint,
    NotificationFormat,
    NotificationsConfig,
    RepositoryLabels,
    ScrapeFormat,
    ScrapeSourceConfig,
    default_checkpoint_dir,
)
from registry_slo.config._kubernetes import KUBELET_PULL_BUCKETS, KubernetesConfig
from registry_slo.config._load import ConfigError, load_config, load_web_config, web_protection
from registry_slo.config._prometheus import MIN_SCRAPES_PER_WINDOW, PrometheusConfig
from registry_slo.config._regions import (
    CACHE_PROBE_KINDS,
    DEFAULT_PROBE_KINDS,
    AuthConfig,
    BasicAuth,
    CoverageConfig,
    NoAuth,
    ProbeConfig,
    RegionConfig,
    ReplicationConfig,
    RollbackConfig,
    TLSConfig,
)
from registry_slo.config._service import (
    OtelConfig,
    SLOEngineConfig,
    default_state_dir,
    listen_address,
)
from registry_slo.config._settings import ENV_PREFIX, Settings
from registry_slo.config._slos import (
    RESERVED_LABELS,
    SLI,
    SLO_NAME,
    AuthSuccessSLI,
    ProbeLatencySLI,
    ProbeSLI,
    ProbeSuccessSLI,
    ReplicationLagSLI,
    SLOSpec,
    TrafficLatencySLI,
    TrafficSLI,
    TrafficSuccessSLI,
    label_name_problem,
    sli_summary,
)
from registry_slo.config._topology import SLOTarget, SLOTopology
from registry_slo.vocabulary import ProbeKind

__all__ = [
    "CACHE_PROBE_KINDS",
    "DEFAULT_PROBE_KINDS",
    "ENV_PREFIX",
    "FORMAT_NAMES",
    "KUBELET_PULL_BUCKETS",
    "MIN_SCRAPES_PER_WINDOW",
    "RESERVED_LABELS",
    "SLI",
    "SLO_NAME",
    "AlertingConfig",
    "AuthConfig",
    "AuthSuccessSLI",
    "BasicAuth",
    "ConfigError",
    "CoverageConfig",
    "FilesystemSourceConfig",
    "IngestConfig",
    "JsonlMapping",
    "KubernetesConfig",
    "LogFormat",
    "LogSourceConfig",
    "MaintenanceWindow",
    "NoAuth",
    "NotificationEndpoint",
    "NotificationFormat",
    "NotificationsConfig",
    "OtelConfig",
    "ProbeConfig",
    "ProbeKind",
    "ProbeLatencySLI",
    "ProbeSLI",
    "ProbeSuccessSLI",
    "PrometheusConfig",
    "Receiver",
    "RegionConfig",
    "ReplicationConfig",
    "ReplicationLagSLI",
    "RepositoryLabels",
    "RollbackConfig",
    "SLOEngineConfig",
    "SLOSpec",
    "SLOTarget",
    "SLOTopology",
    "ScrapeFormat",
    "ScrapeSourceConfig",
    "Settings",
    "TLSConfig",
    "TrafficLatencySLI",
    "TrafficSLI",
    "TrafficSuccessSLI",
    "default_checkpoint_dir",
    "default_state_dir",
    "label_name_problem",
    "listen_address",
    "load_config",
    "load_web_config",
    "sli_summary",
    "web_protection",
]
