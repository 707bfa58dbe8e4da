from __future__ import annotations

from harness.regions import region

__all__ = ["region"]
