"""Fixtures for the generator tests: the example configuration, the real tools."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from harness import binary_path, in_ci, missing_binary_message

from registry_slo.config import Settings, load_config

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "regions.yaml"
COMMITTED = REPO / "alerts"


def require_tool(name: str) -> str:
    """The path of a real tool (``promtool``, ``amtool``): skipped when missing, but a
    failure under CI (``CI=true``), where the tools must be installed."""
    path = binary_path(name)
    if path is None:
        message = missing_binary_message(name)
        if in_ci():
            pytest.fail(message)
        pytest.skip(message)
    return path


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
