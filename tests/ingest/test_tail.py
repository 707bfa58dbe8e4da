"""Following files: rotation (rename, copytruncate), truncation, deletion, inode reuse,
restarts and crashes, with exact line accounting: every line written is seen exactly once
(or, after a crash, at least once and only the lines after the last checkpoint again)."""

from __future__ import annotations

import os
import shutil
from collections import Counter
from pathlib import Path
from typing import ClassVar

import pytest

from registry_slo.ingest import CheckpointStore, FileTailer, SourcePipeline, Tally
from registry_slo.ingest.formats import NOT_AN_OPERATION, Ignored
from registry_slo.observation import Observation


class Recorder:
    """A parser that remembers every line it is given."""

    format: ClassVar[str] = "recorder"

    def __init__(self) -> None:
        self.seen: Counter[bytes] = Counter()

    def parse(self, line: bytes) -> Observation | Ignored:
        self.seen[line] += 1
        return NOT_AN_OPERATION


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Log:
    """Numbered lines written to a file, so that every line is unique."""

    def __init__(self, path: Path, prefix: str = "line") -> None:
        self.path = path
        self.prefix = prefix
        self.written: list[bytes] = []

    def write(self, n: int, *, newline_last: bool = True, path: Path | None = None) -> None:
        lines = [f"{self.prefix}-{len(self.written) + i:06d} some payload".encode()
                 for i in range(n)]
        self.written += lines
        data = b"\n".join(lines) + (b"\n" if newline_last else b"")
        with (path or self.path).open("ab") as fh:
            fh.write(data)

    def finish_line(self, path: Path | None = None) -> None:
        with (path or self.path).open("ab") as fh:
            fh.write(b"\n")


@pytest.fixture
def env(tmp_path: Path) -> dict[str, object]:
    logs = tmp_path / "logs"
    logs.mkdir()
    return {"dir": logs, "store": CheckpointStore(tmp_path / "cp" / "s.json"), "clock": Clock()}


def tailer(env: dict[str, object], pattern: str, recorder: Recorder, **kw: object) -> FileTailer:
    tally = Tally()
    pipeline = SourcePipeline("s", recorder, tally)
    logs = env["dir"]
    assert isinstance(logs, Path)
    options: dict[str, object] = {"read_from": "beginning", "rotate_wait": 5.0,
                                  "checkpoint_interval": 0.0, "clock": env["clock"], **kw}
    return FileTailer([str(logs / pattern)], pipeline, env["store"], **options)  # type: ignore[arg-type]


def exactly_once(recorder: Recorder, log: Log) -> None:
    assert set(recorder.seen) == set(log.written), (
        f"missing {sorted(set(log.written) - set(recorder.seen))[:3]}, "
        f"unexpected {sorted(set(recorder.seen) - set(log.written))[:3]}"
    )
    twice = {line: n for line, n in recorder.seen.items() if n != 1}
    assert not twice, f"seen more than once: {sorted(twice)[:3]}"


def test_follows_appends_and_waits_for_a_line_to_end(env: dict[str, object]) -> None:
    log = Log(env["dir"] / "app.log")  # type: ignore[operator]
    rec = Recorder()
    t = tailer(env, "app.log", rec)
    log.write(10)
    t.poll()
    log.write(3, newline_last=False)
    t.poll()
    assert len(rec.seen) == 12  # the unfinished line waits
    log.finish_line()
    t.poll()
    exactly_once(rec, log)
    assert t.pipeline.sink.total().lines == 13  # type: ignore[attr-defined]


def test_a_file_is_not_read_before_it_has_a_first_line(env: dict[str, object]) -> None:
    path = env["dir"] / "app.log"  # type: ignore[operator]
    rec = Recorder()
    t = tailer(env, "app.log", rec)
    path.write_bytes(b"partial first li")
    t.poll()
    assert t.positions() == {}
    path.write_bytes(b"partial first line\nsecond\n")
    t.poll()
    assert rec.seen == Counter({b"partial first line": 1, b"second": 1})


@pytest.mark.parametrize("pattern", ["app.log", "app.log*"])
def test_rename_and_create_rotation(env: dict[str, object], pattern: str) -> None:
    logs: Path = env["dir"]  # type: ignore[assignment]
    log = Log(logs / "app.log")
    rec = Recorder()
    t = tailer(env, pattern, rec)
    log.write(100)
    t.poll()
    writer = (logs / "app.log").open("ab")  # the registry's open log file
    log.write(10)  # not read yet
    os.rename(logs / "app.log", logs / "app.log.1")
    log.written += [b"late line written to the old file"]
    writer.write(b"late line written to the old file\n")  # before the writer reopens
    writer.close()
    log.write(20)  # the new app.log
    t.poll()
    t.poll()
    exactly_once(rec, log)
    assert t.events["opened"] == 2
    env["clock"].now += 10  # type: ignore[attr-defined]
    t.poll()
    # outside the globs, the rotated file is closed once idle for rotate_wait
    assert t.files == (1 if pattern == "app.log" else 2)
    exactly_once(rec, log)


@pytest.mark.parametrize("copy_in_globs", [True, False])
def test_copytruncate(env: dict[str, object], copy_in_globs: bool) -> None:
    logs: Path = env["dir"]  # type: ignore[assignment]
    log = Log(logs / "app.log")
    rec = Recorder()
    t = tailer(env, "app.log*" if copy_in_globs else "app.log", rec)
    log.write(100)
    t.poll()
    log.write(10)  # written after our last read, before logrotate copies
    shutil.copyfile(logs / "app.log", logs / "app.log.1")
    os.truncate(logs / "app.log", 0)
    log.write(5)
    t.poll()
    t.poll()
    if copy_in_globs:
        exactly_once(rec, log)  # the 10 were read from the copy, nothing twice
        assert t.events["copy_followed"] == 1
    else:
        lost = set(log.written[100:110])
        assert set(rec.seen) == set(log.written) - lost  # logrotate's known window
        assert all(n == 1 for n in rec.seen.values())
        assert t.events["copy_not_found"] == 1


def test_truncation_in_place_with_regrowth(env: dict[str, object]) -> None:
    logs: Path = env["dir"]  # type: ignore[assignment]
    first = Log(logs / "app.log", prefix="old")
    rec = Recorder()
    t = tailer(env, "app.log", rec)
    first.write(5)
    t.poll()
    os.truncate(logs / "app.log", 0)
    second = Log(logs / "app.log", prefix="new")
    second.write(50)  # longer than before: the size alone would not tell
    t.poll()
    assert set(rec.seen) == set(first.written) | set(second.written)
    assert all(n == 1 for n in rec.seen.values())
    assert t.events["truncated"] == 1


def test_deleted_file_is_read_to_its_end(env: dict[str, object]) -> None:
    logs: Path = env["dir"]  # type: ignore[assignment]
    log = Log(logs / "app.log")
    rec = Recorder()
    t = tailer(env, "app.log", rec)
    log.write(10)
    t.poll()
    writer = (logs / "app.log").open("ab")
    os.unlink(logs / "app.log")
    writer.write(b"written after the unlink\n")
    writer.flush()
    log.written.append(b"written after the unlink")
    t.poll()
    exactly_once(rec, log)
    assert t.files == 1
    env["clock"].now += 10  # type: ignore[attr-defined]
    t.poll()
    assert t.files == 0
    writer.close()


def test_reused_inode_is_a_new_file(env: dict[str, object]) -> None:
    logs: Path = env["dir"]  # type: ignore[assignment]
    old = Log(logs / "app.log", prefix="old")
    rec = Recorder()
    t = tailer(env, "app.log", rec)
    old.write(50)
    t.poll()
    inode = os.stat(logs / "app.log").st_ino
    t.close()  # checkpoint: old file read to offset ~1.7 KB
    os.unlink(logs / "app.log")
    new = Log(logs / "app.log", prefix="new")
    new.write(80)  # bigger than the old offset
    reused = os.stat(logs / "app.log").st_ino == inode
    rec2 = Recorder()
    t2 = tailer(env, "app.log", rec2)
    t2.poll()
    # Whether or not the file system gave the inode number again, the new file is read
    # from its beginning: the checkpoint is keyed by content, not by inode.
    exactly_once(rec2, new)
    print("inode reused:", reused)


def test_clean_restarts_lose_nothing_and_repeat_nothing(env: dict[str, object]) -> None:
    logs: Path = env["dir"]  # type: ignore[assignment]
    log = Log(logs / "app.log")
    seen: Counter[bytes] = Counter()
    for round_ in range(12):
        log.write(7 + round_, newline_last=round_ % 3 != 0)
        rec = Recorder()
        t = tailer(env, "app.log*", rec)
        t.poll()
        unfinished = round_ % 3 == 0
        if round_ % 4 == 3:  # rotate while the exporter runs
            if unfinished:  # the writer ends its line in the file it has open
                log.finish_line()
                unfinished = False
            os.rename(logs / "app.log", logs / f"app.log.{round_}")
            log.write(3)
            t.poll()
        t.close()
        seen.update(rec.seen)
        if unfinished:
            log.finish_line()
    rec = Recorder()
    t = tailer(env, "app.log*", rec)
    t.poll()
    t.close()
    seen.update(rec.seen)
    assert set(seen) == set(log.written)
    assert all(n == 1 for n in seen.values())


def test_crash_rereads_only_what_the_last_checkpoint_did_not_cover(
    env: dict[str, object],
) -> None:
    logs: Path = env["dir"]  # type: ignore[assignment]
    log = Log(logs / "app.log")
    rec = Recorder()
    t = tailer(env, "app.log", rec, checkpoint_interval=60.0)
    log.write(40)
    t.poll()
    t.save()  # the last checkpoint before the crash covers 40 lines
    log.write(25)
    t.poll()  # read and accounted, but not checkpointed: then the process dies
    rec2 = Recorder()
    t2 = tailer(env, "app.log", rec2)
    t2.poll()
    assert set(rec.seen) | set(rec2.seen) == set(log.written)  # nothing lost
    assert set(rec2.seen) == set(log.written[40:])  # at least once: only these again


def test_read_from_end_applies_to_the_first_start_only(env: dict[str, object]) -> None:
    logs: Path = env["dir"]  # type: ignore[assignment]
    log = Log(logs / "app.log")
    log.write(30, newline_last=False)  # history, ending in an unfinished line
    rec = Recorder()
    t = tailer(env, "app.log*", rec, read_from="end")
    t.poll()
    assert rec.seen == Counter()
    log.finish_line()  # the rest of the unfinished line is not a line of ours
    log.write(5)
    t.poll()
    assert set(rec.seen) == set(log.written[30:])
    t.close()
    # While stopped: rotation, and a new file. It is read from its beginning.
    os.rename(logs / "app.log", logs / "app.log.1")
    new = Log(logs / "app.log", prefix="new")
    new.write(4)
    rec2 = Recorder()
    t2 = tailer(env, "app.log*", rec2, read_from="end")
    t2.poll()
    assert set(rec2.seen) == set(new.written)


def test_rotation_while_stopped_is_caught_up_through_the_copy(env: dict[str, object]) -> None:
    logs: Path = env["dir"]  # type: ignore[assignment]
    log = Log(logs / "app.log")
    rec = Recorder()
    t = tailer(env, "app.log*", rec)
    log.write(20)
    t.poll()
    t.close()
    log.write(6)  # unread when the exporter stopped
    os.rename(logs / "app.log", logs / "app.log.1")
    log.write(9)
    rec2 = Recorder()
    t2 = tailer(env, "app.log*", rec2)
    t2.poll()
    seen = rec.seen + rec2.seen
    assert set(seen) == set(log.written) and all(n == 1 for n in seen.values())


def test_giant_line_across_a_restart_is_rejected_once(env: dict[str, object]) -> None:
    logs: Path = env["dir"]  # type: ignore[assignment]
    path = logs / "app.log"
    path.write_bytes(b"first\n" + b"G" * 5000)
    sinks = []
    for _ in range(2):
        rec = Recorder()
        t = tailer(env, "app.log", rec, max_line_bytes=1024)
        t.poll()
        t.close()
        sinks.append(t.pipeline.sink)
    with path.open("ab") as fh:
        fh.write(b"GGG\nafter\n")
    rec = Recorder()
    t = tailer(env, "app.log", rec, max_line_bytes=1024)
    t.poll()
    t.close()
    sinks.append(t.pipeline.sink)
    rejected = sum(s.total().rejected["line_too_long"] for s in sinks)  # type: ignore[attr-defined]
    lines = sum(s.total().lines for s in sinks)  # type: ignore[attr-defined]
    assert (rejected, lines) == (1, 3)  # "first", the giant line, "after"


def test_compressed_rotations_are_not_read(env: dict[str, object]) -> None:
    logs: Path = env["dir"]  # type: ignore[assignment]
    (logs / "app.log.2.gz").write_bytes(b"\x1f\x8b\x08 binary\n")
    Log(logs / "app.log").write(3)
    rec = Recorder()
    t = tailer(env, "app.log*", rec, exclude=("*.gz",))
    t.poll()
    assert len(rec.seen) == 3 and t.files == 1
