"""The ``operation`` label values of registry traffic (a closed set)."""

from __future__ import annotations

__all__ = ["OPERATIONS"]

OPERATIONS = (
    "auth",
    "catalog",
    "tags_list",
    "pull_manifest",
    "push_manifest",
    "pull_blob",
    "check_blob",
    "push_blob",
    "delete",
    "other",
)
"""Values of the ``operation`` label for registry traffic.

``auth`` is the ``/v2/`` version check (where clients authenticate); ``check_blob`` is a
``HEAD`` on a blob (push clients asking whether a layer exists, where 404 is a normal
answer); ``push_blob`` covers every request of an upload session (POST, PATCH, PUT,
GET status, DELETE cancel); ``delete`` covers manifests and blobs; ``other`` is any
other ``/v2/`` endpoint.
"""
