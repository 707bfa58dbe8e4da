"""Garbage on a real registry's storage, with what its garbage collector must find, and
running the real collector the way cron does (stdout and stderr appended to one log)."""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import httpx
from harness import PushedImage, push_image

__all__ = ["Garbage", "blob_digests", "gc_binary", "make_garbage", "run_gc",
           "stored_bytes"]


@dataclass(frozen=True)
class Garbage:
    """What a registry's garbage collector must report for the storage
    :func:`make_garbage` left (digests as sets, so shared blobs count once).

    Attributes:
        marked: blobs marked without ``--delete-untagged`` (every manifest still stored
            and what it references).
        eligible: blobs eligible without ``--delete-untagged`` (the deleted manifest
            and its own layer).
        marked_untagged: blobs marked with ``--delete-untagged``.
        eligible_untagged: blobs eligible with it (the untagged manifest and its layer
            too).
        untagged_manifests: manifests eligible with it.
        orphaned_bytes: bytes of the blobs eligible with ``--delete-untagged``.
    """

    marked: frozenset[str]
    eligible: frozenset[str]
    marked_untagged: frozenset[str]
    eligible_untagged: frozenset[str]
    untagged_manifests: frozenset[str]
    orphaned_bytes: int


def make_garbage(url: str, layer_bytes: int = 1024) -> Garbage:
    """Leave orphaned blobs and an untagged manifest on the registry at ``url``
    (``storage.delete.enabled``): ``team/app:v1`` and ``team/app:v2``, then ``v2``'s
    manifest deleted by digest; ``other/lib:latest`` pushed twice (the first manifest
    becomes untagged). The images share their config blob.

    Args:
        url: the registry's base URL.
        layer_bytes: size of each layer (random bytes).
    """
    with httpx.Client(trust_env=False, timeout=30) as client:
        kept = push_image(client, url, "team/app", "v1", layer=os.urandom(layer_bytes))
        deleted = push_image(client, url, "team/app", "v2", layer=os.urandom(layer_bytes))
        gone = client.delete(f"{url}/v2/team/app/manifests/{deleted.manifest_digest}")
        gone.raise_for_status()
        untagged = push_image(client, url, "other/lib", "latest",
                              layer=os.urandom(layer_bytes))
        tagged = push_image(client, url, "other/lib", "latest",
                            layer=os.urandom(layer_bytes))
    config = kept.config_digest
    assert {deleted.config_digest, untagged.config_digest, tagged.config_digest} == {config}

    def image(pushed: PushedImage) -> set[str]:
        return {pushed.manifest_digest, config, pushed.layer_digest}

    marked = image(kept) | image(untagged) | image(tagged)
    marked_untagged = image(kept) | image(tagged)
    eligible_untagged = {deleted.manifest_digest, deleted.layer_digest,
                         untagged.manifest_digest, untagged.layer_digest}
    sizes = {deleted.manifest_digest: len(deleted.manifest),
             deleted.layer_digest: len(deleted.layer),
             untagged.manifest_digest: len(untagged.manifest),
             untagged.layer_digest: len(untagged.layer)}
    return Garbage(
        marked=frozenset(marked),
        eligible=frozenset({deleted.manifest_digest, deleted.layer_digest}),
        marked_untagged=frozenset(marked_untagged),
        eligible_untagged=frozenset(eligible_untagged),
        untagged_manifests=frozenset({untagged.manifest_digest}),
        orphaned_bytes=sum(sizes.values()),
    )


def gc_binary() -> str:
    """The registry binary (Debian's ``docker-registry``)."""
    return shutil.which("docker-registry") or "/usr/bin/docker-registry"


def run_gc(config: Path | str, log: Path, *flags: str) -> int:
    """Run ``docker-registry garbage-collect [flags] CONFIG`` as ``>> log 2>&1`` does:
    stdout and stderr are one file descriptor opened for appending.

    Returns:
        The exit status.
    """
    with log.open("ab") as out:
        done = subprocess.run([gc_binary(), "garbage-collect", *flags, str(config)],
                              stdout=out, stderr=out, check=False, timeout=120)
    return done.returncode


def stored_bytes(root: Path) -> int:
    """Bytes of the files under ``root`` (a registry's storage)."""
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file())


def blob_digests(root: Path) -> set[str]:
    """The blobs stored under a filesystem storage root
    (``docker/registry/v2/blobs/<algorithm>/<2 hex>/<hex>/data``)."""
    blobs = root / "docker" / "registry" / "v2" / "blobs"
    return {f"{data.parents[2].name}:{data.parent.name}" for data in blobs.glob("*/*/*/data")}
