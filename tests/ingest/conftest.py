"""Fixtures of the ingest tests: skopeo (real binary), fixture files, small helpers."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from conftest import require_binary

from .images import Skopeo

FIXTURES = Path(__file__).resolve().parent / "fixtures"
ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # bench/ (log generator, benchmark) is not installed
    sys.path.insert(0, str(ROOT))


@pytest.fixture
def skopeo(tmp_path: Path) -> Skopeo:
    """The real skopeo, with a private HOME (fails under CI when missing)."""
    return Skopeo(require_binary("skopeo"), tmp_path / "skopeo-home")
