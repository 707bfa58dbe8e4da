"""What the local real components (registry, Prometheus) share: one child process in a
temporary work directory, listening on free ports of 127.0.0.1.

`LocalProcess` owns the lifecycle (work dir, spawn with the output in log files, the wait
until it answers, stop, restart, kill and the interpreter-exit safety net); a subclass
supplies only what differs: the binary and command line, the files it writes, the ports
it takes and the URLs that answer once it is ready.
"""

from __future__ import annotations

import abc
import atexit
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import weakref
from pathlib import Path
from types import TracebackType
from typing import IO, ClassVar, Self

import httpx

STOP_GRACE_SECONDS = 5.0
_START_ATTEMPTS = 5
_POLL_SECONDS = 0.02

_LIVE: weakref.WeakSet[LocalProcess] = weakref.WeakSet()


@atexit.register
def _kill_leftovers() -> None:
    """Stop processes still running at interpreter exit (they run in their own session)."""
    for process in list(_LIVE):
        process.stop()


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


def find_binary(name: str, env: str, default: Path, package: str) -> Path:
    """Locate an executable: ``$env`` when set, else ``name`` on ``PATH``, else ``default``.

    Raises:
        RuntimeError: ``$env`` is not executable, or nothing is found (the message names
            the Debian ``package`` to install).
    """
    override = os.environ.get(env)
    if override:
        path = Path(override)
        if path.is_file() and os.access(path, os.X_OK):
            return path
        raise RuntimeError(f"${env}={override!r} is not an executable file")
    found = shutil.which(name)
    if found:
        return Path(found)
    if default.is_file() and os.access(default, os.X_OK):
        return default
    raise RuntimeError(
        f"{name} binary not found: install the Debian package "
        f"'{package}' (apt-get install {package}) or set ${env}"
    )


def terminate(proc: subprocess.Popen[bytes], grace: float = STOP_GRACE_SECONDS) -> None:
    """SIGTERM ``proc``, SIGKILL it after ``grace`` seconds, and wait for it."""
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def tail(path: Path | None, lines: int) -> str:
    """The last ``lines`` lines of a log file (read from its last 64 KiB)."""
    if path is None or not path.exists():
        return ""
    with path.open("rb") as fh:
        fh.seek(0, os.SEEK_END)
        fh.seek(max(0, fh.tell() - 64 * 1024))
        data = fh.read().decode("utf-8", errors="replace")
    return "\n".join(data.splitlines()[-lines:])


class LocalProcess(abc.ABC):
    """A real server process on 127.0.0.1 with a temporary work dir it owns.

    Nothing runs until `start` (or ``with``). The work dir and the ports are chosen at
    the first start and kept by `restart` (``stop(cleanup=False)`` then `start`).

    Args:
        log_path: file receiving the process's log (stderr); default `_log_name` in
            the work dir.
        keep_workdir: keep the work dir on stop.
        start_timeout: seconds `start` waits for the readiness URLs to answer.
    """

    _name: ClassVar[str]
    """What messages and the work dir prefix call the process (``registry``)."""
    _start_error: ClassVar[type[RuntimeError]]
    """Raised by `start` when the process exits or does not answer in time."""
    _config_name: ClassVar[str]
    """File name of the generated config in the work dir."""
    _log_name: ClassVar[str]
    """Default file name of the log in the work dir."""
    _stop_grace: ClassVar[float] = STOP_GRACE_SECONDS
    """Seconds between SIGTERM and SIGKILL on stop."""
    _ready_statuses: ClassVar[frozenset[int]] = frozenset({200})
    """HTTP statuses of the readiness URLs that mean "ready"."""

    def __init__(
        self, *, log_path: Path | str | None, keep_workdir: bool, start_timeout: float
    ) -> None:
        self.keep_workdir = keep_workdir
        self.start_timeout = start_timeout
        self._log_path_arg = Path(log_path) if log_path is not None else None
        self._workdir: Path | None = None
        self._port: int | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._streams: list[IO[bytes]] = []

    # -- what a subclass supplies ------------------------------------------------------

    @property
    @abc.abstractmethod
    def url(self) -> str:
        """Base URL, no trailing slash."""

    @abc.abstractmethod
    def _binary(self) -> Path:
        """Locate the binary (`start` calls it first so a missing one fails early)."""

    @abc.abstractmethod
    def _allocate_ports(self) -> None:
        """Choose free ports: at least ``self._port``."""

    @abc.abstractmethod
    def _prepare(self) -> None:
        """Write the config (and whatever else the process reads) into the work dir."""

    @abc.abstractmethod
    def _command(self) -> list[str]:
        """The command line to run."""

    @abc.abstractmethod
    def _readiness_urls(self) -> list[str]:
        """URLs that must all answer one of `_ready_statuses` before `start` returns."""

    def _stdout_path(self) -> Path:
        """File receiving stdout; default: the log, next to stderr."""
        return self.log_path

    # -- addresses and files -----------------------------------------------------------

    @property
    def port(self) -> int:
        """The TCP port (chosen at the first `start`)."""
        if self._port is None:
            raise RuntimeError(f"{self._name} has not been started")
        return self._port

    @property
    def workdir(self) -> Path:
        """Temporary directory holding the config, the default data dir and the logs."""
        if self._workdir is None:
            raise RuntimeError(f"{self._name} has not been started")
        return self._workdir

    @property
    def config_path(self) -> Path:
        """The generated config file in the work dir."""
        return self.workdir / self._config_name

    @property
    def log_path(self) -> Path:
        """File receiving the process's log (stderr, and stdout unless kept apart)."""
        return self._log_path_arg or self.workdir / self._log_name

    @property
    def pid(self) -> int | None:
        """Process id of the running process, if any."""
        return self._proc.pid if self._proc is not None else None

    @property
    def running(self) -> bool:
        """Whether the process is alive."""
        return self._proc is not None and self._proc.poll() is None

    def log_tail(self, lines: int = 30) -> str:
        """Return the last ``lines`` lines of `log_path`."""
        if self._workdir is None and self._log_path_arg is None:
            return ""
        return tail(self.log_path, lines)

    # -- lifecycle ---------------------------------------------------------------------

    def start(self) -> Self:
        """Start the process and wait until its readiness URLs answer.

        On the first start free ports are chosen (and re-chosen if the process loses a
        bind race); after `stop` with ``cleanup=False`` (as `restart` does) the same
        ports and data are reused.

        Returns:
            ``self``.

        Raises:
            RuntimeError: the binary is missing.
            RegistryStartError | PrometheusStartError: the process exited or did not
                answer in time; the message includes the tail of its log.
        """
        if self.running:
            return self
        self._binary()
        if self._workdir is None:
            self._workdir = Path(tempfile.mkdtemp(prefix=f"registry-slo-{self._name}-"))
        pinned = self._port is not None
        last_error: RuntimeError | None = None
        for _ in range(_START_ATTEMPTS):
            if not pinned:
                self._allocate_ports()
            self._prepare()
            self._spawn()
            try:
                self._wait_ready(self.start_timeout)
            except self._start_error as exc:
                self._terminate()
                last_error = exc
                if not pinned and "address already in use" in str(exc):
                    continue
                raise
            return self
        assert last_error is not None
        raise last_error

    def _spawn(self) -> None:
        command = self._command()
        self._close_streams()
        log_path, stdout_path = self.log_path, self._stdout_path()
        for path in {log_path, stdout_path}:
            path.parent.mkdir(parents=True, exist_ok=True)
        log = log_path.open("ab")
        self._streams.append(log)
        stdout = log
        if stdout_path != log_path:
            stdout = stdout_path.open("ab")
            self._streams.append(stdout)
        self._proc = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=stdout,
            stderr=log,
            cwd=self.workdir,
            start_new_session=True,
        )
        _LIVE.add(self)

    def _wait_ready(self, timeout: float) -> None:
        """Wait until every readiness URL answers, in order.

        Raises:
            RuntimeError: `_start_error`, when the process exited or ``timeout`` seconds
                passed.
        """
        assert self._proc is not None
        deadline = time.monotonic() + timeout
        pending = self._readiness_urls()
        # verify=False: a TLS registry serves a throw-away certificate on 127.0.0.1.
        with httpx.Client(verify=False, trust_env=False, timeout=1.0) as client:  # noqa: S501
            while pending:
                code = self._proc.poll()
                if code is not None:
                    raise self._start_error(
                        f"{self._name} exited with status {code} during start "
                        f"(config {self.config_path}); log tail:\n{self.log_tail()}"
                    )
                with contextlib.suppress(httpx.TransportError):
                    if client.get(pending[0]).status_code in self._ready_statuses:
                        pending.pop(0)
                        continue
                if time.monotonic() > deadline:
                    raise self._start_error(
                        f"{self._name} at {self.url} did not answer GET {pending[0]} "
                        f"within {timeout:.1f}s; log tail:\n{self.log_tail()}"
                    )
                time.sleep(_POLL_SECONDS)

    def _close_streams(self) -> None:
        for stream in self._streams:
            stream.close()
        self._streams.clear()

    def _terminate(self) -> None:
        """Stop the process, if any, and release what belongs to this run."""
        if self._proc is not None:
            terminate(self._proc, self._stop_grace)
            self._proc = None
        self._close_streams()
        _LIVE.discard(self)

    def stop(self, *, cleanup: bool = True) -> None:
        """Stop the process (SIGTERM, then SIGKILL after a grace period) and wait.

        Args:
            cleanup: remove the temporary work dir (unless ``keep_workdir``); the next
                `start` then begins with empty data and new ports.
        """
        self._terminate()
        if cleanup and self._workdir is not None:
            if not self.keep_workdir:
                shutil.rmtree(self._workdir, ignore_errors=True)
            self._workdir = None
            self._port = None

    def restart(self) -> Self:
        """Stop and start again on the same port(s) with the same data.

        Returns:
            ``self``.
        """
        self.stop(cleanup=False)
        return self.start()

    def kill(self) -> None:
        """SIGKILL the process without cleanup (simulates a crash); `start` recovers."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait()
        self._proc = None
        self._terminate()

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
        return f"<{type(self).__name__} {where}>"
