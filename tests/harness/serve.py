"""``registry-slo serve`` as users run it: its own process, stopped by SIGTERM or killed,
and frozen (SIGSTOP) between short slices when a test must decide where a crash lands."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import httpx
import yaml

__all__ = ["ServeProcess"]


class ServeProcess:
    """Start ``registry-slo serve --config CONFIG`` (stderr appended to ``log``) and wait
    until ``/healthz`` answers.

    Args:
        config: the configuration file (its ``listen`` gives :attr:`base`).
        log: where the exporter's log goes.
        timeout: seconds to wait for ``/healthz``.
        wait: ``False``: return at once, without waiting for ``/healthz`` (a test that
            steps the process from its start with :meth:`pause` and :meth:`resume`).
        env: the process's environment (default: this one's); its
            ``REGISTRY_SLO_LISTEN``, if any, gives :attr:`base` as it overrides the file.
        cwd: its working directory (default: this one's).
        args: more arguments after ``--config CONFIG`` (e.g. ``--region=a``).
        scheme: ``https`` when a web configuration file asks for TLS.
        client: how :meth:`get` reaches it (``httpx.get`` options: ``verify`` with the
            CA and a client certificate, ``auth``), e.g. behind a web configuration.
    """

    def __init__(
        self, config: Path, log: Path, timeout: float = 30.0, *, wait: bool = True,
        env: Mapping[str, str] | None = None, cwd: Path | None = None,
        args: Sequence[str] = (),
        scheme: str = "http",
        client: Mapping[str, Any] | None = None,
    ) -> None:
        self.log = log
        self.client = dict(client or {})
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "registry_slo", "serve", "--config", str(config), *args],
            stdout=subprocess.DEVNULL, stderr=log.open("ab"), env=env, cwd=cwd,
        )
        listen = (env or {}).get("REGISTRY_SLO_LISTEN")
        self.base = f"{scheme}://{listen or yaml.safe_load(config.read_text())['listen']}"
        if wait:
            self.wait_ready(timeout)

    def wait_ready(self, timeout: float = 30.0) -> None:
        """Wait until ``/healthz`` answers 200 (fails when the process exits first)."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                if self.get("/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            assert self.proc.poll() is None, self.tail()
            assert time.monotonic() < deadline, self.tail()
            time.sleep(0.1)

    def get(self, path: str, timeout: float = 5.0) -> httpx.Response:
        """GET ``path`` of the exporter, with the :attr:`client` options."""
        return httpx.get(f"{self.base}{path}", timeout=timeout, **self.client)

    def tail(self) -> str:
        """The end of the exporter's log."""
        return self.log.read_text(errors="replace")[-3000:]

    def wait(self, timeout: float) -> int:
        """Wait for the exporter to exit on its own.

        Args:
            timeout: seconds to wait at most.

        Returns:
            Its exit status.
        """
        return self.proc.wait(timeout=timeout)

    def stop(self) -> None:
        """SIGTERM, and the clean exit it must make."""
        self.proc.terminate()
        assert self.proc.wait(timeout=20) == 0, self.tail()

    def kill(self) -> None:
        """SIGKILL: a crash (also of a paused process)."""
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def pause(self) -> None:
        """SIGSTOP, and return only once every thread of the process has stopped: until
        :meth:`resume`, it reads, counts and commits nothing."""
        self.proc.send_signal(signal.SIGSTOP)
        # The kernel reports the stop to the parent once the whole thread group stopped.
        _, status = os.waitpid(self.proc.pid, os.WUNTRACED)
        if not os.WIFSTOPPED(status):
            self.proc.returncode = os.waitstatus_to_exitcode(status)
            raise AssertionError(f"the exporter exited instead of stopping\n{self.tail()}")

    def resume(self) -> None:
        """SIGCONT: undo :meth:`pause`."""
        self.proc.send_signal(signal.SIGCONT)
