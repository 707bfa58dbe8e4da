"""Region state for tests: a config for one URL, credentials written to a file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from registry_slo.config import RegionConfig
from registry_slo.probes import RegionState


def region(url: str, name: str = "test", tmp_path: Path | None = None,
           username: str | None = None, password: str | None = None,
           **probe: Any) -> RegionState:
    """A RegionState for ``url``; ``probe`` keys override the probe section."""
    data: dict[str, Any] = {"name": name, "url": url,
                            "probe": {"blob_size": "64KiB", "timeout": "5s", **probe}}
    if username is not None:
        assert tmp_path is not None and password is not None
        secret = tmp_path / f"{name}.pw"
        secret.write_text(password)
        data["auth"] = {"type": "basic", "username": username, "password_file": str(secret)}
    return RegionState(RegionConfig.model_validate(data))
