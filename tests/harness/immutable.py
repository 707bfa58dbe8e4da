"""Make a file unwritable for real, for root too: the immutable attribute (``chattr +i``).

Tests run as root, for whom permission bits are no obstacle. A file with the immutable
attribute refuses every write (``EPERM``), through descriptors opened before as well, so
a running process that holds the file open finds it unwritable from that moment on.
"""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Iterator
from pathlib import Path

from . import in_ci, require_binary

__all__ = ["immutable"]


@contextlib.contextmanager
def immutable(path: Path) -> Iterator[None]:
    """Set the immutable attribute of ``path`` for the ``with`` block.

    Skips the test (locally) or fails it (CI) when ``chattr`` is missing or the file
    system does not support the attribute.

    Args:
        path: an existing file (not one a process maps into memory: writes to a mapping
            of an immutable file kill that process with SIGBUS).
    """
    import pytest

    chattr = require_binary("chattr")
    result = subprocess.run([chattr, "+i", str(path)], capture_output=True, text=True,
                            check=False)
    if result.returncode != 0:
        message = f"chattr +i {path}: {result.stderr.strip()} (file system without it?)"
        if in_ci():
            pytest.fail(message)
        pytest.skip(message)
    try:
        yield
    finally:
        subprocess.run([chattr, "-i", str(path)], check=True)
