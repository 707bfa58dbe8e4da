"""Run a real CNCF distribution registry (Debian's ``docker-registry``) locally.

`LocalRegistry` writes its own YAML config (listening on 127.0.0.1 only, storage in a
temporary directory it owns), starts ``docker-registry serve CONFIG`` and waits until
``GET /v2/`` answers. It is used by the ``demo`` command and by the test-suite.

Example::

    with LocalRegistry(auth=HtpasswdAuth({"prober": "secret"})) as reg:
        httpx.get(f"{reg.url}/v2/", auth=("prober", "secret"))
"""

from __future__ import annotations

import atexit
import contextlib
import os
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Literal, Self

import bcrypt
import httpx
import yaml

from registry_slo.devenv._process import tail, terminate

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
_START_ATTEMPTS = 5
_STOP_GRACE_SECONDS = 5.0

_LIVE: weakref.WeakSet[LocalRegistry] = weakref.WeakSet()


@atexit.register
def _kill_leftovers() -> None:
    """Stop registries still running at interpreter exit (they run in their own session)."""
    for reg in list(_LIVE):
        reg.stop()


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


def free_port(host: str = "127.0.0.1") -> int:
    """Return a TCP port that was free a moment ago on ``host``.

    The port is found by binding to port 0 and closing the socket, so another process
    may take it before the caller binds: callers retry on "address already in use".

    Args:
        host: the interface to bind.

    Returns:
        The port number.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def registry_binary() -> Path:
    """Locate the ``docker-registry`` binary.

    ``$REGISTRY_SLO_REGISTRY_BIN`` wins when set; otherwise ``docker-registry`` on
    ``PATH``, then ``/usr/bin/docker-registry``.

    Returns:
        Path of an executable registry binary.

    Raises:
        RuntimeError: when no binary is found (naming the Debian package to install).
    """
    override = os.environ.get(REGISTRY_BIN_ENV)
    if override:
        path = Path(override)
        if path.is_file() and os.access(path, os.X_OK):
            return path
        raise RuntimeError(f"${REGISTRY_BIN_ENV}={override!r} is not an executable file")
    found = shutil.which("docker-registry")
    if found:
        return Path(found)
    if _DEFAULT_BINARY.is_file() and os.access(_DEFAULT_BINARY, os.X_OK):
        return _DEFAULT_BINARY
    raise RuntimeError(
        "docker-registry binary not found: install the Debian package "
        f"'{REGISTRY_DEBIAN_PACKAGE}' (apt-get install {REGISTRY_DEBIAN_PACKAGE}) "
        f"or set ${REGISTRY_BIN_ENV}"
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




@dataclass
class _Files:
    log: IO[bytes] | None = None
    access: IO[bytes] | None = None

    def close(self) -> None:
        for fh in (self.log, self.access):
            if fh is not None:
                fh.close()
        self.log = self.access = None


class LocalRegistry:
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
    """

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
        self.keep_workdir = keep_workdir
        self.extra_config: Mapping[str, Any] = dict(extra_config or {})
        self.start_timeout = start_timeout

        self._log_path_arg = Path(log_path) if log_path is not None else None
        self._access_log_path_arg = Path(access_log_path) if access_log_path is not None else None
        self._storage_dir_arg = Path(storage_dir) if storage_dir is not None else None

        self._workdir: Path | None = None
        self._port: int | None = None
        self._debug_port: int | None = None
        self._secret = secrets.token_hex(16)
        self._proc: subprocess.Popen[bytes] | None = None
        self._files = _Files()

    # -- addresses ---------------------------------------------------------------------

    @property
    def port(self) -> int:
        """The registry's TCP port (chosen at the first `start`)."""
        if self._port is None:
            raise RuntimeError("registry has not been started")
        return self._port

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
        if not self.debug_metrics or self._debug_port is None:
            raise RuntimeError("debug server not enabled (pass debug_metrics=True) or not started")
        return f"http://127.0.0.1:{self._debug_port}"

    # -- files -------------------------------------------------------------------------

    @property
    def workdir(self) -> Path:
        """Temporary directory holding the config, htpasswd, default storage and logs."""
        if self._workdir is None:
            raise RuntimeError("registry has not been started")
        return self._workdir

    @property
    def config_path(self) -> Path:
        """The generated ``config.yml``."""
        return self.workdir / "config.yml"

    @property
    def storage_dir(self) -> Path:
        """Filesystem storage root."""
        return self._storage_dir_arg or self.workdir / "storage"

    @property
    def log_path(self) -> Path:
        """File receiving the registry's JSON log lines (stderr)."""
        return self._log_path_arg or self.workdir / "registry.log"

    @property
    def access_log_path(self) -> Path:
        """File receiving the access log (stdout, Apache combined format)."""
        return self._access_log_path_arg or self.workdir / "access.log"

    @property
    def pid(self) -> int | None:
        """Process id of the running registry, if any."""
        return self._proc.pid if self._proc is not None else None

    @property
    def running(self) -> bool:
        """Whether the registry process is alive."""
        return self._proc is not None and self._proc.poll() is None

    def log_tail(self, lines: int = 30) -> str:
        """Return the last ``lines`` lines of the JSON log (stderr)."""
        return tail(self.log_path if self._workdir or self._log_path_arg else None, lines)

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

    def _write_files(self) -> None:
        workdir = self.workdir
        self.storage_dir.mkdir(parents=True, exist_ok=True)
        if isinstance(self.auth, HtpasswdAuth):
            lines = [
                f"{user}:{bcrypt.hashpw(pw.encode(), bcrypt.gensalt(rounds=5)).decode()}\n"
                for user, pw in self.auth.users.items()
            ]
            (workdir / "htpasswd").write_text("".join(lines))
        self.config_path.write_text(yaml.safe_dump(self.build_config(), sort_keys=False))

    # -- lifecycle ---------------------------------------------------------------------

    def start(self) -> Self:
        """Start the registry and wait until ``GET /v2/`` answers 200 or 401.

        On the first start free ports are chosen (and re-chosen if the registry loses
        a bind race); after `stop` with ``cleanup=False`` (as `restart` does) the same
        ports and storage are reused.

        Returns:
            ``self``.

        Raises:
            RuntimeError: the registry binary is missing.
            RegistryStartError: the process exited or did not answer in time; the
                message includes the tail of the registry's log.
        """
        if self.running:
            return self
        binary = registry_binary()
        if self._workdir is None:
            self._workdir = Path(tempfile.mkdtemp(prefix="registry-slo-registry-"))
        pinned = self._port is not None
        last_error: RegistryStartError | None = None
        for _ in range(_START_ATTEMPTS):
            if not pinned:
                self._port = free_port()
                self._debug_port = free_port() if self.debug_metrics else None
            self._write_files()
            self._spawn(binary)
            try:
                self._wait_ready()
            except RegistryStartError as exc:
                self._terminate()
                last_error = exc
                if not pinned and "address already in use" in str(exc):
                    continue
                raise
            return self
        assert last_error is not None
        raise last_error

    def _spawn(self, binary: Path) -> None:
        self._files.close()
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self.access_log_path.parent.mkdir(parents=True, exist_ok=True)
        self._files.log = self.log_path.open("ab")
        self._files.access = self.access_log_path.open("ab")
        self._proc = subprocess.Popen(
            [str(binary), "serve", str(self.config_path)],
            stdin=subprocess.DEVNULL,
            stdout=self._files.access,
            stderr=self._files.log,
            cwd=self.workdir,
            start_new_session=True,
        )
        _LIVE.add(self)

    def _wait_ready(self) -> None:
        assert self._proc is not None
        deadline = time.monotonic() + self.start_timeout
        targets = [f"{self.url}/v2/"]
        if self.debug_metrics:
            targets.append(f"{self.debug_url}/metrics")
        with httpx.Client(verify=False, trust_env=False, timeout=1.0) as client:  # noqa: S501
            while targets:
                code = self._proc.poll()
                if code is not None:
                    raise RegistryStartError(
                        f"registry exited with status {code} during start "
                        f"(config {self.config_path}); log tail:\n{self.log_tail()}"
                    )
                if time.monotonic() > deadline:
                    raise RegistryStartError(
                        f"registry at {self.url} did not answer GET {targets[0]} within "
                        f"{self.start_timeout:.1f}s; log tail:\n{self.log_tail()}"
                    )
                try:
                    response = client.get(targets[0])
                except httpx.TransportError:
                    time.sleep(0.02)
                    continue
                if response.status_code in (200, 401):
                    targets.pop(0)
                else:
                    time.sleep(0.02)

    def _terminate(self) -> None:
        proc = self._proc
        if proc is not None:
            terminate(proc, _STOP_GRACE_SECONDS)
            self._proc = None
        self._files.close()
        _LIVE.discard(self)

    def stop(self, *, cleanup: bool = True) -> None:
        """Stop the registry (SIGTERM, then SIGKILL after a grace period) and wait.

        Args:
            cleanup: remove the temporary work dir (unless ``keep_workdir``); the next
                `start` then begins with empty storage and new ports.
        """
        self._terminate()
        if cleanup and self._workdir is not None:
            if not self.keep_workdir:
                shutil.rmtree(self._workdir, ignore_errors=True)
            self._workdir = None
            self._port = None
            self._debug_port = None

    def restart(self) -> Self:
        """Stop and start again on the same port(s) with the same storage.

        Returns:
            ``self``.
        """
        self.stop(cleanup=False)
        return self.start()

    def kill(self) -> None:
        """SIGKILL the registry without cleanup (simulates a crash); `start` recovers."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait()
        self._proc = None
        self._files.close()
        _LIVE.discard(self)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __del__(self) -> None:
        proc = getattr(self, "_proc", None)
        if proc is not None and proc.poll() is None:
            with contextlib.suppress(OSError):
                proc.kill()

    def __repr__(self) -> str:
        where = self.url if self._port is not None else "not started"
        return f"<LocalRegistry {where} auth={type(self.auth).__name__}>"
