"""Local development environments built from real components (the distribution registry).

Used by the ``demo`` command and by the test-suite's fixtures.
"""

from __future__ import annotations

from registry_slo.devenv.registry import (
    REGISTRY_BIN_ENV,
    REGISTRY_DEBIAN_PACKAGE,
    AuthOption,
    HtpasswdAuth,
    LocalRegistry,
    RegistryStartError,
    TokenAuth,
    free_port,
    registry_binary,
)

__all__ = [
    "REGISTRY_BIN_ENV",
    "REGISTRY_DEBIAN_PACKAGE",
    "AuthOption",
    "HtpasswdAuth",
    "LocalRegistry",
    "RegistryStartError",
    "TokenAuth",
    "free_port",
    "registry_binary",
]
