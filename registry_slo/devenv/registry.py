"""Run a real CNCF distribution registry (Debian's ``docker-registry``) locally.

`LocalRegistry` writes its own YAML config (listening on 127.0.0.1 only, storage in a
temporary directory it owns), starts ``docker-registry serve CONFIG`` and waits until
``GET /v2/`` answers. It is used by the ``demo`` command and by the test-suite.

Example::

    with LocalRegistry(auth=HtpasswdAuth({"prober": "secret"})) as reg:
        httpx.get(f"{reg.url}/v2/", auth=("prober", "secret"))
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal

import bcrypt
import yaml

from registry_slo.devenv._process import LocalProcess, find_binary, free_port

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

REGISTRY_BIN_ENV = "REGISTRY_SLO_REGISTRY_BIN"
"""Environment variable that overrides the path of the registry binary."""

REGISTRY_DEBIAN_PACKAGE = "docker-registry"
"""Debian package that ships ``/usr/bin/docker-registry`` (distribution 2.8)."""

_DEFAULT_BINARY = Path("/usr/bin/docker-registry")


class RegistryStartError(RuntimeError):
    """The registry process exited or did not answer ``GET /v2/`` in time."""


@dataclass(frozen=True)
class HtpasswdAuth:
    """Basic auth against an htpasswd file (written with bcrypt hashes).

    Attributes:
        users: user name → clear-text password.
        realm: the Basic realm the registry announces.
    """

    users: Mapping[str, str]
    realm: str = "registry-slo"


@dataclass(frozen=True)
class TokenAuth:
    """Bearer token auth (``auth.token``) delegated to an external token server.

    Attributes:
        realm: URL of the token endpoint announced in ``WWW-Authenticate``.
        service: the service name; tokens must carry it as their ``aud`` claim.
        issuer: the accepted ``iss`` claim.
        rootcertbundle: PEM file with the certificate(s) token signing keys chain to.
    """

    realm: str
    service: str
    issuer: str
    rootcertbundle: Path


AuthOption = HtpasswdAuth | TokenAuth | tuple[Literal["htpasswd"], Mapping[str, str]] | None
"""Accepted values of `LocalRegistry`'s ``auth`` argument."""


def registry_binary() -> Path:
    """Locate the ``docker-registry`` binary.

    ``$REGISTRY_SLO_REGISTRY_BIN`` wins when set; otherwise ``docker-registry`` on
    ``PATH``, then ``/usr/bin/docker-registry``.

    Returns:
        Path of an executable registry binary.

    Raises:
        RuntimeError: when no binary is found (naming the Debian package to install).
    """
    return find_binary(
        "docker-registry", REGISTRY_BIN_ENV, _DEFAULT_BINARY, REGISTRY_DEBIAN_PACKAGE
    )


def _deep_merge(base: dict[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    for key, value in extra.items():
        current = base.get(key)
        if isinstance(current, dict) and isinstance(value, Mapping):
            base[key] = _deep_merge(current, value)
        else:
            base[key] = value
    return base


def _normalize_auth(auth: AuthOption) -> HtpasswdAuth | TokenAuth | None:
    if isinstance(auth, tuple):
        kind, users = auth
        if kind != "htpasswd":
            raise ValueError(f"unknown auth kind {kind!r}")
        return HtpasswdAuth(dict(users))
    return auth


class LocalRegistry(LocalProcess):
    """A real distribution registry process on 127.0.0.1 with its own config and storage.

    All arguments are keyword-only. The registry is not started until `start` (or
    ``with``). Ports are chosen at the first start and kept by `restart`.

    Args:
        auth: ``None``, `HtpasswdAuth` (or ``("htpasswd", {user: password})``) or
            `TokenAuth`.
        delete_enabled: ``storage.delete.enabled``.
        debug_metrics: serve ``http.debug`` (with Prometheus ``/metrics`` and
            ``/debug/vars``) on a second free port, see `debug_url`.
        proxy_remote_url: run as a pull-through cache of this upstream registry.
        proxy_username: upstream user name for the pull-through cache.
        proxy_password: upstream password for the pull-through cache.
        notifications: endpoint URLs that receive webhook notification envelopes.
        notification_timeout: per-delivery timeout, seconds.
        notification_backoff: delay between failed deliveries, seconds.
        log_path: file receiving the registry's JSON logs (stderr); defaults to
            ``registry.log`` in the work dir (removed on stop unless kept).
        access_log_path: file receiving the Apache-style access log (stdout); defaults
            to ``access.log`` next to ``log_path``'s default.
        log_level: ``log.level`` (error, warn, info, debug).
        tls: ``(certfile, keyfile)`` to serve HTTPS; `url` then uses ``https``.
        storage_dir: use this storage root instead of one inside the work dir (it is
            never removed).
        keep_workdir: keep the temporary work dir (config, storage, logs) on stop.
        extra_config: mapping deep-merged into the generated config last.
        start_timeout: seconds `start` waits for ``GET /v2/`` to answer.

    The lifecycle (`start`, `stop`, `restart`, `kill`, `running`, `pid`, `port`,
    `workdir`, `config_path`, `log_path`, `log_tail`) comes from `LocalProcess`.
    """

    _name: ClassVar[str] = "registry"
    _start_error: ClassVar[type[RuntimeError]] = RegistryStartError
    _config_name: ClassVar[str] = "config.yml"
    _log_name: ClassVar[str] = "registry.log"
    # With auth configured, GET /v2/ answers 401 to the anonymous readiness probe.
    _ready_statuses: ClassVar[frozenset[int]] = frozenset({200, 401})

    def __init__(
        self,
        *,
        auth: AuthOption = None,
        delete_enabled: bool = True,
        debug_metrics: bool = False,
        proxy_remote_url: str | None = None,
        proxy_username: str | None = None,
        proxy_password: str | None = None,
        notifications: Sequence[str] = (),
        notification_timeout: float = 1.0,
        notification_backoff: float = 1.0,
        log_path: Path | str | None = None,
        access_log_path: Path | str | None = None,
        log_level: str = "info",
        tls: tuple[Path | str, Path | str] | None = None,
        storage_dir: Path | str | None = None,
        keep_workdir: bool = False,
        extra_config: Mapping[str, Any] | None = None,
        start_timeout: float = 15.0,
    ) -> None:
        super().__init__(log_path=log_path, keep_workdir=keep_workdir, start_timeout=start_timeout)
        self.auth: HtpasswdAuth | TokenAuth | None = _normalize_auth(auth)
        self.delete_enabled = delete_enabled
        self.debug_metrics = debug_metrics
        self.proxy_remote_url = proxy_remote_url
        self.proxy_username = proxy_username
        self.proxy_password = proxy_password
        self.notifications: tuple[str, ...] = tuple(notifications)
        self.notification_timeout = notification_timeout
        self.notification_backoff = notification_backoff
        self.log_level = log_level
        self.tls: tuple[Path, Path] | None = (
            (Path(tls[0]), Path(tls[1])) if tls is not None else None
        )
        self.extra_config: Mapping[str, Any] = dict(extra_config or {})
        self._access_log_path_arg = Path(access_log_path) if access_log_path is not None else None
        self._storage_dir_arg = Path(storage_dir) if storage_dir is not None else None
        self._debug_port: int | None = None
        self._secret = secrets.token_hex(16)

    # -- addresses ---------------------------------------------------------------------

    @property
    def host(self) -> str:
        """``127.0.0.1:PORT``, the registry part of image references."""
        return f"127.0.0.1:{self.port}"

    @property
    def scheme(self) -> str:
        """``https`` when serving TLS, else ``http``."""
        return "https" if self.tls is not None else "http"

    @property
    def url(self) -> str:
        """Base URL, ``http://127.0.0.1:PORT`` (``https`` with TLS), no trailing slash."""
        return f"{self.scheme}://{self.host}"

    @property
    def debug_url(self) -> str:
        """Base URL of the debug server (``/metrics``, ``/debug/vars``).

        Raises:
            RuntimeError: when ``debug_metrics`` is off or the registry never started.
        """
        # _port, not _debug_port, is reset by stop(cleanup=True).
        if not self.debug_metrics or self._port is None or self._debug_port is None:
            raise RuntimeError("debug server not enabled (pass debug_metrics=True) or not started")
        return f"http://127.0.0.1:{self._debug_port}"

    # -- files -------------------------------------------------------------------------

    @property
    def storage_dir(self) -> Path:
        """Filesystem storage root."""
        return self._storage_dir_arg or self.workdir / "storage"

    @property
    def access_log_path(self) -> Path:
        """File receiving the access log (stdout, Apache combined format)."""
        return self._access_log_path_arg or self.workdir / "access.log"

    # -- config ------------------------------------------------------------------------

    def build_config(self) -> dict[str, Any]:
        """Return the registry configuration for the current ports and paths.

        Returns:
            A mapping that `start` dumps as ``config.yml``.
        """
        http: dict[str, Any] = {
            "addr": self.host,
            "secret": self._secret,
            "headers": {"X-Content-Type-Options": ["nosniff"]},
        }
        if self.tls is not None:
            http["tls"] = {"certificate": str(self.tls[0]), "key": str(self.tls[1])}
        if self.debug_metrics and self._debug_port is not None:
            http["debug"] = {
                "addr": f"127.0.0.1:{self._debug_port}",
                "prometheus": {"enabled": True, "path": "/metrics"},
            }
        config: dict[str, Any] = {
            "version": 0.1,
            "log": {
                "level": self.log_level,
                "formatter": "json",
                "fields": {"service": "registry"},
            },
            "storage": {
                "filesystem": {"rootdirectory": str(self.storage_dir)},
                "delete": {"enabled": self.delete_enabled},
                "cache": {"blobdescriptor": "inmemory"},
                "maintenance": {"uploadpurging": {"enabled": False}},
            },
            "http": http,
        }
        if isinstance(self.auth, HtpasswdAuth):
            config["auth"] = {
                "htpasswd": {"realm": self.auth.realm, "path": str(self.workdir / "htpasswd")}
            }
        elif isinstance(self.auth, TokenAuth):
            config["auth"] = {
                "token": {
                    "realm": self.auth.realm,
                    "service": self.auth.service,
                    "issuer": self.auth.issuer,
                    "rootcertbundle": str(self.auth.rootcertbundle),
                }
            }
        if self.proxy_remote_url is not None:
            proxy: dict[str, Any] = {"remoteurl": self.proxy_remote_url}
            if self.proxy_username is not None:
                proxy["username"] = self.proxy_username
                proxy["password"] = self.proxy_password or ""
            config["proxy"] = proxy
        if self.notifications:
            config["notifications"] = {
                "endpoints": [
                    {
                        "name": f"endpoint-{i}",
                        "url": url,
                        "timeout": f"{int(self.notification_timeout * 1000)}ms",
                        "threshold": 3,
                        "backoff": f"{int(self.notification_backoff * 1000)}ms",
                    }
                    for i, url in enumerate(self.notifications)
                ]
            }
        return _deep_merge(config, self.extra_config)

    # -- LocalProcess hooks ------------------------------------------------------------

    def _prepare(self) -> None:
        workdir = self.workdir
        self.storage_dir.mkdir(parents=True, exist_ok=True)
        if isinstance(self.auth, HtpasswdAuth):
            lines = [
                f"{user}:{bcrypt.hashpw(pw.encode(), bcrypt.gensalt(rounds=5)).decode()}\n"
                for user, pw in self.auth.users.items()
            ]
            (workdir / "htpasswd").write_text("".join(lines))
        self.config_path.write_text(yaml.safe_dump(self.build_config(), sort_keys=False))

    def _binary(self) -> Path:
        return registry_binary()

    def _allocate_ports(self) -> None:
        self._port = free_port()
        self._debug_port = free_port() if self.debug_metrics else None

    def _command(self) -> list[str]:
        return [str(registry_binary()), "serve", str(self.config_path)]

    def _stdout_path(self) -> Path:
        return self.access_log_path

    def _readiness_urls(self) -> list[str]:
        urls = [f"{self.url}/v2/"]
        if self.debug_metrics:
            urls.append(f"{self.debug_url}/metrics")
        return urls

    def __repr__(self) -> str:
        where = self.url if self._port is not None else "not started"
        return f"<LocalRegistry {where} auth={type(self.auth).__name__}>"
