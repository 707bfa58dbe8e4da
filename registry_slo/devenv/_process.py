"""What the local real components (registry, Prometheus) share: stopping a child
process and reading the tail of its log."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

STOP_GRACE_SECONDS = 5.0


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
