"""A mirror kept in sync by a ``skopeo sync`` loop with a known period."""

from __future__ import annotations

import shutil
import subprocess
import threading
import time

from registry_slo.devenv.registry import LocalRegistry

__all__ = ["SkopeoSyncLoop", "skopeo_binary"]


def skopeo_binary() -> str:
    """The ``skopeo`` binary, or a clear error naming the Debian package."""
    path = shutil.which("skopeo")
    if path is None:
        raise RuntimeError("skopeo not found: apt-get install skopeo")
    return path


class SkopeoSyncLoop:
    """Copy ``repository[:tag]`` from ``source`` to ``mirror`` every ``period`` seconds.

    Like a replication job (Harbor replication, regsync, ``skopeo sync`` in cron): the
    mirror lags the source by up to one period plus the copy time.

    Args:
        source: the registry replicated from.
        mirror: the registry replicated to (same repository path).
        repository: e.g. ``registry-slo/probe``.
        tag: only this tag (``None``: every tag of the repository).
        period: seconds from the start of one sync to the start of the next.
    """

    def __init__(
        self,
        source: LocalRegistry,
        mirror: LocalRegistry,
        repository: str,
        tag: str | None = None,
        period: float = 5.0,
    ) -> None:
        namespace, _, _ = repository.rpartition("/")
        reference = f"{source.host}/{repository}" + (f":{tag}" if tag else "")
        self.args = [
            skopeo_binary(), "sync", "--src", "docker", "--dest", "docker",
            "--src-tls-verify=false", "--dest-tls-verify=false",
            reference, f"{mirror.host}/{namespace}" if namespace else mirror.host,
        ]
        self.period = period
        self.syncs = 0
        self.failures = 0
        self.durations: list[float] = []
        """Seconds each finished sync took (its share of the mirror's lag)."""
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _run(self) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            result = subprocess.run(self.args, capture_output=True, timeout=60, check=False)
            self.durations.append(time.monotonic() - started)
            if result.returncode == 0:
                self.syncs += 1
            else:
                self.failures += 1
            self._stop.wait(max(0.0, self.period - (time.monotonic() - started)))

    def start(self) -> None:
        """Start syncing in a background thread."""
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="skopeo-sync", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop after the sync in progress."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=65)
            self._thread = None
