from __future__ import annotations

import pytest

from registry_slo._units import format_duration, parse_duration, parse_size


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("30s", 30), ("1m30s", 90), ("250ms", 0.25), ("1h", 3600), ("2d", 172800), (15, 15),
     ("1.5s", 1.5), ("1w", 604800)],
)
def test_parse_duration(text: object, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "30", "s", "1x", "1m 30s", "-1s", True, None, "30s5"])
def test_parse_duration_rejects(text: object) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)


@pytest.mark.parametrize(
    ("text", "size"),
    [("1MiB", 1 << 20), ("512KiB", 512 << 10), ("1MB", 10**6), ("64B", 64), ("4096", 4096),
     (10, 10), ("1.5KiB", 1536), ("2gib", 2 << 30)],
)
def test_parse_size(text: object, size: int) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["", "MiB", "1 XB", "-1", 1.5, True])
def test_parse_size_rejects(text: object) -> None:
    with pytest.raises(ValueError):
        parse_size(text)


@pytest.mark.parametrize(("seconds", "text"), [(30, "30s"), (90, "1m30s"), (0.25, "250ms"),
                                               (2592000, "30d"), (0, "0s"), (2.5, "2s500ms")])
def test_format_duration(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text
    assert parse_duration(text) == seconds
