"""registry-slo: an SLO exporter for OCI container image registries."""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
