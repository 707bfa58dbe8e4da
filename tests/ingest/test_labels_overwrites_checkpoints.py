"""Bounded repository labels, tag overwrite detection, atomic checkpoints."""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path

import pytest

from registry_slo.ingest import (
    OTHER,
    Checkpoint,
    CheckpointStore,
    RepositoryLabeler,
    RepositoryLabels,
    TagOverwriteDetector,
)
from registry_slo.observation import Observation


def test_allow_list_globs() -> None:
    labeler = RepositoryLabeler(RepositoryLabels(allow=("library/*", "team/app")))
    assert labeler.label("r", "library/nginx") == "library/nginx"
    assert labeler.label("r", "team/app") == "team/app"
    assert labeler.label("r", "team/app2") == OTHER
    assert labeler.label("r", None) is None


def test_allow_and_top_n_are_exclusive() -> None:
    with pytest.raises(ValueError, match="not both"):
        RepositoryLabels(allow=("a",), top_n=3)
    assert RepositoryLabeler(RepositoryLabels(top_n=0)).label("r", "a") == OTHER


def test_top_n_keeps_the_busiest_per_region() -> None:
    labeler = RepositoryLabeler(RepositoryLabels(top_n=2), reevaluate_every=10, warmup=0)
    traffic = ["noise/1", "noise/2", "noise/3"] + ["hot/a"] * 50 + ["hot/b"] * 30
    for i in range(200):
        traffic.append(f"cold/{i}")
        traffic.append("hot/a")
        traffic.append("hot/b")
    for name in traffic:
        labeler.label("us", name)
    assert labeler.labelled("us") == {"hot/a", "hot/b"}
    assert labeler.label("us", "hot/a") == "hot/a"
    assert labeler.label("us", "cold/7") == OTHER
    # regions are counted apart
    for _ in range(5):
        labeler.label("eu", "eu/only")
    assert labeler.labelled("eu") == {"eu/only"}


def test_top_n_series_stay_bounded_when_the_top_keeps_changing() -> None:
    labeler = RepositoryLabeler(RepositoryLabels(top_n=3), reevaluate_every=5, warmup=0)
    labels = set()
    for wave in range(100):  # each wave has a new busiest set
        for name in (f"w{wave}/a", f"w{wave}/b", f"w{wave}/c") * 20:
            labels.add(labeler.label("r", name))
    assert len(labels - {OTHER}) <= 4 * 3


def observation(operation: str, tag: str, digest: str, repo: str = "a",
                success: bool = True) -> Observation:
    return Observation("r", operation, "s", success, None, 0.0, 0.0, repository=repo,
                       tag=tag, digest=digest)


def test_overwrites_are_pushes_of_a_known_tag_with_a_new_digest() -> None:
    detector = TagOverwriteDetector()
    assert not detector.observe(observation("push_manifest", "v1", "sha256:1"))
    assert not detector.observe(observation("push_manifest", "v1", "sha256:1"))  # same digest
    assert detector.observe(observation("push_manifest", "v1", "sha256:2"))
    assert not detector.observe(observation("push_manifest", "v1", "sha256:3", success=False))
    assert not detector.observe(observation("pull_manifest", "v2", "sha256:9"))  # learns v2
    assert detector.observe(observation("push_manifest", "v2", "sha256:8"))
    assert not detector.observe(observation("push_manifest", "v1", "sha256:2", repo="b"))


def test_overwrite_memory_is_bounded() -> None:
    detector = TagOverwriteDetector(capacity=10)
    for i in range(100):
        detector.observe(observation("push_manifest", f"t{i}", "sha256:1"))
    assert len(detector) == 10
    assert not detector.observe(observation("push_manifest", "t0", "sha256:2"))  # forgotten
    assert detector.observe(observation("push_manifest", "t99", "sha256:2"))


def test_checkpoint_round_trip_is_atomic(tmp_path: Path) -> None:
    store = CheckpointStore(tmp_path / "cp" / "src.json")
    assert store.load() == {}
    entries = {"fp1": Checkpoint(10, "/var/log/a", 1, 2, 1e9 * 2)}
    store.save(entries)
    assert store.load() == entries
    assert [p.name for p in (tmp_path / "cp").iterdir()] == ["src.json"]  # no temp left


def test_old_entries_are_dropped_and_a_corrupt_file_is_set_aside(tmp_path: Path) -> None:
    store = CheckpointStore(tmp_path / "src.json", retention=60)
    store.save({"old": Checkpoint(1, "/a", 1, 1, 0.0), "new": Checkpoint(2, "/b", 1, 2, 4e9)})
    assert list(store.load()) == ["new"]
    (tmp_path / "src.json").write_text("{half a json")
    assert store.load() == {}
    assert (tmp_path / "src.corrupt").read_text() == "{half a json"
    (tmp_path / "src.json").write_text(json.dumps({"version": 99, "files": {}}))
    assert store.load() == {}


def test_a_failed_write_leaves_the_previous_checkpoint(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    store = CheckpointStore(tmp_path / "src.json")
    first = {"fp": Checkpoint(5, "/a", 1, 1, 4e9)}
    store.save(first)

    def broken_fsync(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", broken_fsync)
    with pytest.raises(OSError):
        store.save({"fp": Checkpoint(99, "/a", 1, 1, 4e9)})
    monkeypatch.undo()
    assert store.load() == first
    assert sorted(p.name for p in tmp_path.iterdir()) == ["src.json"]


class MemoryCursor:
    """A committed value held in memory (the SLI engine's cursor commits to SQLite)."""

    def __init__(self) -> None:
        self.value: str | None = None

    def read(self) -> str | None:
        return self.value

    def write(self, value: str) -> None:
        self.value = value

    def hold(self) -> contextlib.AbstractContextManager[object]:
        return contextlib.nullcontext()


def test_a_checkpoint_kept_in_a_cursor_takes_over_from_the_file(tmp_path: Path) -> None:
    path = tmp_path / "src.json"
    old = {"fp": Checkpoint(5, "/a", 1, 1, 4e9)}
    CheckpointStore(path).save(old)
    cursor = MemoryCursor()
    store = CheckpointStore(path, cursor=cursor)
    assert store.exists() and store.load() == old  # migrated from the file
    newer = {"fp": Checkpoint(9, "/a", 1, 1, 4e9)}
    store.save(newer)
    assert cursor.value is not None and store.load() == newer
    assert path.exists()  # the cursor's value may not be committed yet
    store.save(newer)
    assert not path.exists()  # a committed cursor value supersedes the file
    assert store.exists() and store.load() == newer
    cursor.value = "{broken"
    assert store.load() == {}
    assert not CheckpointStore(tmp_path / "none.json", cursor=MemoryCursor()).exists()
