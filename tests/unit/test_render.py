"""Charts of the status page and the report (registry_slo._render): a canvas reused for
the next chart draws exactly what a new one draws."""

from __future__ import annotations

import struct
import threading
from collections.abc import Callable

from registry_slo._render import Line, Shade, burn_down_png, burn_rate_png

START = 1_761_955_200.0
DAY = 86400.0


def _in_new_thread(draw: Callable[[], bytes]) -> bytes:
    """Draw on a thread of its own: canvases are kept per thread, so this one is new."""
    out: list[bytes] = []
    thread = threading.Thread(target=lambda: out.append(draw()))
    thread.start()
    thread.join()
    return out[0]


def _size(png: bytes) -> tuple[int, int]:
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", png[16:24])
    return width, height


def _down_a() -> bytes:
    return burn_down_png("a in east", START, START + 30 * DAY,
                         [Line("remaining", [(START + h * 3600, 1 - h / 500) for h in range(720)])],
                         [Shade(START + 3 * DAY, START + 3.1 * DAY, "page"),
                          Shade(START + 9 * DAY, START + 10 * DAY, "gap")])


def _down_b() -> bytes:
    return burn_down_png("b in west, three lines", START - 5 * DAY, START + 2 * DAY,
                         [Line(f"slo-{i}", [(START - 5 * DAY + h * 3600, 1 - i * h / 40)
                                            for h in range(168)]) for i in range(3)],
                         [Shade(START, START + DAY, "ticket")], date_format="%d")


def _rate_a() -> bytes:
    return burn_rate_png("a", START, START + DAY,
                         [Line("pulls", [(START + m * 300, m % 7) for m in range(288)])],
                         [("page 14.4x", 14.4)])


def _rate_b() -> bytes:
    return burn_rate_png("b", START + DAY, START + 2 * DAY,
                         [Line("x", [(START + DAY + m * 300, 900.0) for m in range(288)]),
                          Line("y", [])], [("page 13.44x", 13.44), ("other", 3.0)])


def test_a_reused_canvas_draws_what_a_new_one_draws() -> None:
    for first, other in ((_down_a, _down_b), (_rate_a, _rate_b)):
        fresh = _in_new_thread(first)

        def again(first: Callable[[], bytes] = first,
                  other: Callable[[], bytes] = other) -> bytes:
            other()
            other()
            return first()

        assert _in_new_thread(again) == fresh
        assert _in_new_thread(other) != fresh


def test_chart_sizes() -> None:
    assert _size(_down_a()) == (800, 300)
    assert _size(_rate_b()) == (800, 260)
