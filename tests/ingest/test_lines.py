"""Line splitting: chunk boundaries never matter; giant lines are bounded and counted."""

from __future__ import annotations

import random

import pytest

from registry_slo.ingest.lines import LineSplitter


def split(data: bytes, chunks: list[int], limit: int = 64) -> tuple[list[bytes], int, int]:
    splitter = LineSplitter(limit)
    lines: list[bytes] = []
    too_long = 0
    end = 0
    pos = 0
    for size in chunks:
        cut = splitter.feed(data[pos : pos + size])
        pos += size
        lines += cut.lines
        too_long += cut.too_long
        if cut.end is not None:
            end = cut.end
    assert pos == len(data)
    return lines, too_long, end


DATA = b"".join(
    [b"short\n", b"x" * 64 + b"\n", b"y" * 65 + b"\n", b"\n", b"z" * 300 + b"\n", b"last\n",
     b"unfinished"]
)


def test_whole_and_byte_by_byte_agree() -> None:
    whole = split(DATA, [len(DATA)])
    assert whole == ([b"short", b"x" * 64, b"", b"last"], 2, len(DATA) - len(b"unfinished"))
    assert split(DATA, [1] * len(DATA)) == whole


@pytest.mark.parametrize("seed", range(20))
def test_random_chunking_agrees(seed: int) -> None:
    rng = random.Random(seed)
    chunks = []
    left = len(DATA)
    while left:
        size = min(left, rng.randint(1, 90))
        chunks.append(size)
        left -= size
    assert split(DATA, chunks) == split(DATA, [len(DATA)])


def test_memory_is_bounded_while_a_giant_line_streams_in() -> None:
    splitter = LineSplitter(1024)
    for _ in range(1000):
        cut = splitter.feed(b"g" * 4096)
        assert cut.lines == [] and cut.too_long == 0
        assert splitter.pending <= 1024
    cut = splitter.feed(b"g\nnext\n")
    assert (cut.lines, cut.too_long) == ([b"next"], 1)


def test_finish_hands_over_the_unfinished_last_line() -> None:
    splitter = LineSplitter(64)
    splitter.feed(b"a\nb")
    cut = splitter.finish()
    assert (cut.lines, cut.too_long, cut.end) == ([b"b"], 0, 3)
    assert splitter.finish().lines == []


def test_skip_to_next_line_drops_silently() -> None:
    splitter = LineSplitter(64, position=100)
    splitter.skip_to_next_line()
    cut = splitter.feed(b"tail of an old line\nnew\n")
    assert (cut.lines, cut.too_long, cut.end) == ([b"new"], 0, 100 + 24)
