"""Reading the configuration file: strict YAML, and errors that name the file and the key."""

from __future__ import annotations

import os
import ssl
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from registry_slo._serving import WebProtection
from registry_slo.config._settings import ENV_PREFIX, Settings
from registry_slo.config._web import WebConfigFile
from registry_slo.vocabulary import SLI_KINDS

__all__ = ["ConfigError", "load_config", "load_web_config", "web_protection"]


MAX_CONFIG_BYTES = 16 * 2**20
"""The largest configuration file read."""


class ConfigError(Exception):
    """A configuration file that cannot be used; the message names the file and the key."""


class _UniqueKeyLoader(yaml.SafeLoader):
    """A YAML loader that refuses a key given twice in one mapping."""


def _construct_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node)
        if not isinstance(key, str):
            raise yaml.constructor.ConstructorError(
                None, None,
                f"key {key_node.value!r} is not a string: every key is a name"
                if isinstance(key_node, yaml.ScalarNode)
                else "a key is a list or mapping: every key is a name",
                key_node.start_mark,
            )
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


def _format_validation_error(exc: ValidationError, source: str, overrides: bool = True) -> str:
    lines = [f"{source}: invalid configuration ({exc.error_count()} error(s))"]
    for error in exc.errors(include_url=False):
        key = _format_location(error["loc"])
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            message = "unknown key"
        lines.append(f"  {source}: {key}: {message}")
    overridden = sorted(k for k in os.environ if k.startswith(ENV_PREFIX))
    if overrides and overridden:
        lines.append(f"  (environment overrides in effect: {', '.join(overridden)})")
    return "\n".join(lines)


def _read_mapping(path: str | Path, what: str) -> dict[str, Any]:
    """The YAML mapping in ``path`` (``what`` it should be, for messages).

    Raises:
        ConfigError: naming the file, and the line where the YAML is wrong.
    """
    source = str(path)
    try:
        with Path(path).open("rb") as stream:
            raw = stream.read(MAX_CONFIG_BYTES + 1)
    except OSError as exc:
        raise ConfigError(f"{source}: cannot read the {what}: {exc.strerror}") from None
    if len(raw) > MAX_CONFIG_BYTES:
        raise ConfigError(f"{source}: larger than {MAX_CONFIG_BYTES // 2**20} MiB: not "
                          f"a {what} file")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{source}: not UTF-8 text (byte {exc.start}); save the "
                          f"{what} as UTF-8") from None
    try:
        data = yaml.load(text, Loader=_UniqueKeyLoader) or {}  # noqa: S506 - a SafeLoader
    except RecursionError:
        raise ConfigError(f"{source}: nested too deeply to be a {what}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        where = f":{mark.line + 1}:{mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"{source}{where}: not valid YAML: {problem}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: the top level must be a mapping of keys")
    return data


def load_config(path: str | Path | None) -> Settings:
    """Load and validate the configuration (and the web configuration file it names).

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
        data = _read_mapping(path, "configuration")
    try:
        settings = Settings(**data)
    except ValidationError as exc:
        raise ConfigError(_format_validation_error(exc, source)) from None
    except (ArithmeticError, RecursionError) as exc:  # a value no validator foresaw
        raise ConfigError(f"{source}: invalid configuration: a value out of range "
                          f"({type(exc).__name__}: {exc})") from None
    web_protection(settings)
    return settings


def load_web_config(path: str | Path) -> WebProtection:
    """Read a web configuration file (``--web.config.file``) and check that its TLS files
    can be used.

    Raises:
        ConfigError: naming the file and the key that is wrong.
    """
    source = str(path)
    data = _read_mapping(path, "web configuration")
    try:
        protection = WebConfigFile(**data).protection(Path(path).parent)
    except ValidationError as exc:
        raise ConfigError(_format_validation_error(exc, source, overrides=False)) from None
    except (ArithmeticError, RecursionError) as exc:
        raise ConfigError(f"{source}: invalid web configuration: a value out of range "
                          f"({type(exc).__name__}: {exc})") from None
    if protection.tls is not None:
        try:
            protection.tls.context()
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(
                f"{source}: tls_server_config: cannot use cert_file {protection.tls.cert_file}"
                f", key_file {protection.tls.key_file} or client_ca_file "
                f"{protection.tls.client_ca_file}: {exc}"
            ) from None
    return protection


def web_protection(settings: Settings) -> WebProtection | None:
    """The protection ``settings.web_config_file`` asks for, if it names one.

    Raises:
        ConfigError: the file is wrong, or it asks for Basic users while a notification
            endpoint's registries must send a bearer token (both are the one
            ``Authorization`` header a registry sends).
    """
    if settings.web_config_file is None:
        return None
    protection = load_web_config(settings.web_config_file)
    notifications = settings.ingest.notifications
    if protection.users and notifications.endpoints and (
        notifications.bearer_token_file is not None or notifications.bearer_token_env is not None
    ):
        raise ConfigError(
            f"{settings.web_config_file}: basic_auth_users: the notification listener also "
            "asks for ingest.notifications.bearer_token_*; a registry sends one "
            "Authorization header: drop the bearer token and give the registries a Basic "
            "user (notifications.endpoints[].headers.Authorization)"
        )
    return protection
