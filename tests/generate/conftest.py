"""Fixtures for the generator tests: the example configuration, the real tools."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from harness import require_binary

from registry_slo.config import Settings, load_config

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "regions.yaml"
COMMITTED = REPO / "alerts"


require_tool = require_binary
"""The path of a real tool (``promtool``, ``amtool``): see `harness.require_binary`."""


@pytest.fixture
def tool() -> Callable[[str], str]:
    """``tool("promtool")``: see `require_tool`."""
    return require_tool


@pytest.fixture
def promtool() -> str:
    """The real ``promtool`` (Debian package prometheus)."""
    return require_tool("promtool")


@pytest.fixture
def amtool() -> str:
    """The real ``amtool`` (Debian package prometheus-alertmanager)."""
    return require_tool("amtool")


@pytest.fixture(scope="session")
def example() -> Settings:
    """The example configuration the committed ``alerts/`` is generated from."""
    return load_config(EXAMPLE)
