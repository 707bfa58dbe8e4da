"""What every configuration section shares: strictness and reading secrets."""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import BaseModel, ConfigDict, SecretStr

__all__ = ["Strict", "read_secret", "require_positive"]


class Strict(BaseModel):
    """A frozen section that refuses unknown keys."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def read_secret(file: Path | None, env: str | None, what: str) -> SecretStr:
    """The secret in ``file`` (trailing newline stripped) or in the variable ``env``.

    Raises:
        ValueError: unless exactly one is given and it can be read.
    """
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


def require_positive(seconds: float, key: str) -> None:
    """Refuse a duration that is not positive, naming ``key``."""
    if seconds <= 0:
        raise ValueError(f"{key}: must be positive")
