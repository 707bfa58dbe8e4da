"""Checks of the names the configuration gives: label values, repositories, tags."""

from __future__ import annotations

import re

__all__ = ["label_value", "repository_name", "tag_name"]

_LABEL_SAFE = re.compile(r"^[a-z0-9]([a-z0-9._-]{0,62})$")
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_REPOSITORY = re.compile(rf"^{_COMPONENT}(?:/{_COMPONENT})*$")
_TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$")


def label_value(value: str) -> str:
    """``value`` if it is a safe label value (region and source names), else ValueError."""
    if not _LABEL_SAFE.fullmatch(value):
        raise ValueError(f"{value!r} must be lowercase letters, digits, '.', '_' or '-'")
    return value


def repository_name(value: str) -> str:
    """``value`` if it is a valid OCI repository name, else ValueError."""
    if not _REPOSITORY.fullmatch(value):
        raise ValueError(f"{value!r} is not a valid repository name")
    return value


def tag_name(value: str) -> str:
    """``value`` if it is a valid OCI tag, else ValueError."""
    if not _TAG.fullmatch(value):
        raise ValueError(f"{value!r} is not a valid tag")
    return value
