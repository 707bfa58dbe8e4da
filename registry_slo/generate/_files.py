"""Writing generated files and comparing them with a committed copy (for every output
of ``registry-slo generate``: rules and routing, dashboards)."""

from __future__ import annotations

import difflib
from pathlib import Path

from registry_slo.generate._model import GenerationError


def write_generated(
    files: dict[str, str], out: Path, previous: dict[str, Path], option: str
) -> list[Path]:
    """Write ``files`` (relative path → text) into ``out``.

    Files an earlier generation wrote (``previous``) that are no longer produced are
    removed; a file in the way that no generation wrote is never overwritten.

    Args:
        files: what to write.
        out: the output directory (created if missing).
        previous: the files under ``out`` an earlier generation wrote.
        option: the command-line option choosing ``out``, for the error message.

    Raises:
        GenerationError: a file to write exists and was not generated.
    """
    for relative in files:
        if (out / relative).exists() and relative not in previous:
            raise GenerationError(
                f"{out / relative} exists and was not written by registry-slo generate: "
                f"not overwriting it (choose another {option})"
            )
    for relative, path in previous.items():
        if relative not in files:
            path.unlink()
    written = []
    for relative, text in files.items():
        path = out / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written


def describe_change(old: str, new: str) -> str:
    """``differs at line N (K line(s)): committed '…', generated '…'``."""
    old_lines, new_lines = old.splitlines(), new.splitlines()
    matcher = difflib.SequenceMatcher(None, old_lines, new_lines, autojunk=False)
    changes = [op for op in matcher.get_opcodes() if op[0] != "equal"]
    if not changes:
        return "differs in line endings or the final newline"
    count = sum(max(i2 - i1, j2 - j1) for _, i1, i2, j1, j2 in changes)
    _, i1, i2, j1, j2 = changes[0]
    was = old_lines[i1].strip()[:100] if i1 < i2 else "(nothing)"
    now = new_lines[j1].strip()[:100] if j1 < j2 else "(nothing)"
    return f"differs at line {i1 + 1} ({count} line(s)): committed {was!r}, generated {now!r}"


def compare_generated(
    fresh: dict[str, str], committed: dict[str, Path], directory: Path
) -> list[str]:
    """One line per missing, stale or changed file; empty when ``directory`` is up to date.

    Args:
        fresh: what a generation produces now (relative path → text).
        committed: the generated files found under ``directory``.
        directory: the committed copy.
    """
    differences = []
    for relative in sorted(set(fresh) | set(committed)):
        if relative not in committed:
            state = "exists but was not generated" if (directory / relative).exists() else (
                "missing"
            )
            differences.append(f"{relative}: {state}")
        elif relative not in fresh:
            differences.append(f"{relative}: stale (no longer generated)")
        else:
            old = committed[relative].read_text(encoding="utf-8")
            if old != fresh[relative]:
                differences.append(f"{relative}: {describe_change(old, fresh[relative])}")
    return differences
