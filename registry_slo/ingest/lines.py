"""Cut a byte stream into lines, with memory bounded by ``max_line_bytes``.

Shared by the tailer and by ``replay``. Data arrives in chunks; complete lines (without
their ``\\n``) are handed on with the stream position just after them, and the unfinished
tail waits for the next chunk. A line longer than ``max_line_bytes`` is never held: once
the pending tail exceeds the limit it is dropped and everything up to the next newline is
skipped, and the line is reported once (as ``line_too_long``) when its newline arrives.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Cut", "LineSplitter"]


@dataclass(frozen=True, slots=True)
class Cut:
    """What one chunk completed.

    Attributes:
        lines: complete lines that fit, in order, without their newline.
        too_long: lines that ended in this chunk but were longer than the limit.
        end: stream position just after the last newline of the chunk (``None`` when the
            chunk had no newline): everything before it is accounted once ``lines`` and
            ``too_long`` are.
    """

    lines: list[bytes]
    too_long: int
    end: int | None


class LineSplitter:
    """Split chunks of a stream into lines (see the module docstring).

    Args:
        max_line_bytes: the longest line kept (without its newline).
        position: the stream position of the first byte that will be fed.
    """

    def __init__(self, max_line_bytes: int, position: int = 0) -> None:
        self.max_line_bytes = max_line_bytes
        self.position = position  # of the next byte to be fed
        self._pending = b""
        self._discarding = False  # skipping the rest of a line up to its newline
        self._silent = False  # ... without reporting it (it began before we started)

    @property
    def pending(self) -> int:
        """Bytes held for an unfinished line."""
        return len(self._pending)

    @property
    def discarding(self) -> bool:
        """Whether the rest of a line is being skipped."""
        return self._discarding

    def skip_to_next_line(self) -> None:
        """Drop what comes before the next newline without reporting it (used when
        starting in the middle of a line)."""
        self._pending = b""
        self._discarding = True
        self._silent = True

    def _start_discarding(self) -> None:
        self._pending = b""
        self._discarding = True
        self._silent = False

    def feed(self, data: bytes) -> Cut:
        """Consume one chunk.

        Returns:
            The lines it completed.
        """
        start = self.position
        self.position += len(data)
        limit = self.max_line_bytes
        last = data.rfind(b"\n")
        if last < 0:
            if not self._discarding:
                if len(self._pending) + len(data) > limit:
                    self._start_discarding()
                else:
                    self._pending += data
            return Cut([], 0, None)
        lines = data[:last].split(b"\n")
        too_long = 0
        if self._discarding:
            # The first piece is the end of a line being skipped.
            too_long += 0 if self._silent else 1
            self._discarding = self._silent = False
            del lines[0]
        elif self._pending:
            lines[0] = self._pending + lines[0]
        if lines and max(map(len, lines)) > limit:
            kept = [line for line in lines if len(line) <= limit]
            too_long += len(lines) - len(kept)
            lines = kept
        tail = data[last + 1 :]
        if len(tail) > limit:
            self._start_discarding()
        else:
            self._pending = tail
        return Cut(lines, too_long, start + last + 1)

    def finish(self) -> Cut:
        """End of stream (a file that will not grow again): an unfinished last line is
        a line too."""
        end = self.position
        if self._discarding:
            reported = 0 if self._silent else 1
            self._discarding = self._silent = False
            return Cut([], reported, end)
        if self._pending:
            line, self._pending = self._pending, b""
            return Cut([line], 0, end)
        return Cut([], 0, None)
