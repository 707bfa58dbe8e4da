"""The exporter process: its OpenTelemetry export, its SLI engine, where it keeps state."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import AfterValidator, Field, field_validator

from registry_slo._units import Duration
from registry_slo.config._base import Strict

__all__ = ["Listen", "OtelConfig", "SLOEngineConfig", "default_state_dir", "listen_address"]


class OtelConfig(Strict):
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


class SLOEngineConfig(Strict):
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


def listen_address(listen: str) -> tuple[str, int]:
    """Split ``host:port`` (IPv6 hosts in brackets) into its parts."""
    host, sep, port = listen.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"{listen!r} must be host:port")
    return host.strip("[]") or "0.0.0.0", int(port)  # noqa: S104 - an empty host means all


def _check_listen(value: str) -> str:
    listen_address(value)
    return value


Listen = Annotated[str, AfterValidator(_check_listen)]
"""A ``host:port`` to listen on."""
