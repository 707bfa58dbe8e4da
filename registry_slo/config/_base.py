"""What every configuration section shares: strictness, reading secrets, checking URLs."""

from __future__ import annotations

import os
import re
from pathlib import Path
from urllib.parse import SplitResult, urlsplit

from pydantic import BaseModel, ConfigDict, SecretStr

__all__ = ["MAX_SECRET_BYTES", "Strict", "check_http_url", "read_secret", "require_positive"]

MAX_SECRET_BYTES = 65536
"""The most a secret file may hold: a password or token, not ``/dev/zero``."""
_HOST = re.compile(r"[A-Za-z0-9.-]+|[0-9A-Fa-f:.]+")


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
            with file.open("rb") as stream:
                raw = stream.read(MAX_SECRET_BYTES + 1)
        except OSError as exc:
            raise ValueError(f"{what}_file: cannot read {file}: {exc.strerror}") from None
        if len(raw) > MAX_SECRET_BYTES:
            raise ValueError(f"{what}_file: {file} holds more than {MAX_SECRET_BYTES} bytes")
        try:
            return SecretStr(raw.decode("utf-8").rstrip("\r\n"))
        except UnicodeDecodeError:
            raise ValueError(f"{what}_file: {file} is not UTF-8 text") from None
    assert env is not None
    if env not in os.environ:
        raise ValueError(f"{what}_env: environment variable {env} is not set")
    return SecretStr(os.environ[env])


def require_positive(seconds: float, key: str) -> None:
    """Refuse a duration that is not positive, naming ``key``."""
    if seconds <= 0:
        raise ValueError(f"{key}: must be positive")



def check_http_url(value: str) -> SplitResult:
    """The parts of ``value`` if it is a plain http(s) URL: a host (name, IPv4 or IPv6)
    and an optional port, no credentials (secrets come from files or the environment,
    and credentials in a URL would be silently ignored), no fragment, no whitespace.

    Raises:
        ValueError: saying what is wrong.
    """
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{value!r} must be an http:// or https:// URL")
    if parts.username is not None or parts.password is not None:
        raise ValueError(f"{parts.scheme}://{parts.hostname}…: credentials do not belong "
                         "in the URL; use auth with a password_file or password_env")
    if "#" in value:
        raise ValueError(f"{value!r} must not have a #fragment")
    if any(c.isspace() for c in value) or not _HOST.fullmatch(parts.hostname):
        raise ValueError(f"{value!r}: the host is not a host name or IP address")
    try:
        port = parts.port  # None without one; ValueError beyond 65535 or not a number
    except ValueError:
        port = 0
    if port == 0:
        raise ValueError(f"{value!r}: the port is not a number from 1 to 65535")
    return parts
