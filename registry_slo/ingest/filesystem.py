"""Storage use (M7) of a registry whose storage is a local filesystem, from ``statvfs``.

distribution 2.8 reports no storage figure of its own; where the exporter runs next to
it (or has its storage volume mounted), the filesystem says how much is used and how
much there is, which is what the 70% storage alert needs. Read at every scrape: a
``statvfs`` call costs microseconds.
"""

from __future__ import annotations

import math
import os

import structlog

from registry_slo.config import FilesystemSourceConfig

__all__ = ["FilesystemUsage"]

log = structlog.get_logger("registry_slo.ingest")


class FilesystemUsage:
    """Used and total bytes of the filesystem holding ``config.path``.

    Args:
        config: the ``ingest.filesystems`` entry.
    """

    def __init__(self, config: FilesystemSourceConfig) -> None:
        self.config = config
        self._failing = False

    def _stat(self) -> os.statvfs_result | None:
        try:
            result = os.statvfs(self.config.path)
        except OSError as exc:
            if not self._failing:  # said once per outage, not at every scrape
                log.warning("ingest: cannot read the storage filesystem",
                            source=self.config.name, path=str(self.config.path),
                            error=exc.strerror or str(exc))
            self._failing = True
            return None
        self._failing = False
        return result

    def used(self) -> float:
        """Bytes in use (NaN when the path cannot be read)."""
        st = self._stat()
        return math.nan if st is None else float((st.f_blocks - st.f_bfree) * st.f_frsize)

    def capacity(self) -> float:
        """Bytes an unprivileged writer can use in all: used plus available (NaN when the
        path cannot be read). Blocks reserved for root are left out, as ``df`` does."""
        st = self._stat()
        if st is None:
            return math.nan
        return float((st.f_blocks - st.f_bfree + st.f_bavail) * st.f_frsize)
