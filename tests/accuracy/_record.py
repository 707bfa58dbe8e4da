"""Where the accuracy tests keep their measured figures (docs/accuracy.md)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

__all__ = ["record"]


def record(check: str, **figures: Any) -> None:
    """Keep a check's measured figures for docs/accuracy.md: one JSON line per check in
    ``$REGISTRY_SLO_ACCURACY_OUT`` when it is set (``scripts/accuracy.sh`` sets it)."""
    out = os.environ.get("REGISTRY_SLO_ACCURACY_OUT", "").strip()
    if not out:
        return
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as handle:
        handle.write(json.dumps({"check": check, **figures}, sort_keys=True) + "\n")


def _table(path: Path) -> str:
    """The figures of a run as the Markdown table of docs/accuracy.md."""
    rows = ["| check | truth | measured | error | goal |", "|---|---|---|---|---|"]
    for line in path.read_text(encoding="utf-8").splitlines():
        f = json.loads(line)
        match f["check"]:
            case "latency":
                rows.append(
                    f"| {f['probe']} duration | direct {f['direct'] * 1000:.1f} ms + "
                    f"{f['requests']} x delay = {(f['direct'] + f['injected']) * 1000:.1f} ms "
                    f"| {f['measured'] * 1000:.1f} ms | {f['error'] * 1000:+.1f} ms | "
                    f"2 ms + 5 % = {2 + 50 * (f['direct'] + f['injected']):.1f} ms |")
            case "availability":
                rows.append(
                    f"| pull availability, {f['runs']} runs | failure share "
                    f"{f['injected_failure_ratio']:.4f}; {f['failed_runs']} runs failed | "
                    f"{f['reported_availability']:.4f} (exactly the failed runs) | "
                    f"{f['deviation']:+.4f} | 4 sigma = {f['bound']:.4f} |")
            case "quantile":
                rows.append(
                    f"| p95 at {f['beside']:g} x threshold {f['threshold']:g} s | "
                    f"{f['exact_p95']:.4f} s | {f['histogram_p95']:.4f} s (standard layout "
                    f"alone: {f['standard_layout_p95']:.4f} s) | {f['error']:.1%} (standard: "
                    f"{f['standard_layout_error']:.1%}) | 10 % |")
            case "replication_lag":
                rows.append(
                    f"| lag, sync every {f['period']:g} s | true lag up to "
                    f"{f['max_true_lag']:.1f} s | staleness up to {f['max_staleness']:.2f} s "
                    f"| value error up to {f['max_value_error']:.1f} s until the next read "
                    f"(mean {f['mean_abs_value_error']:.2f} s) | staleness {f['bound']:g} s |")
            case "ingest":
                share = ", ".join(f"{op} {v:.0%}" for op, v in
                                  sorted(f["duration_share_of_round_trip"].items()))
                rows.append(
                    f"| ingest, {f['requests']} requests | counts, codes, "
                    f"{f['egress_bytes']} response bytes | exactly equal | 0 | exact; "
                    f"duration sum below the round trips ({share}) |")
    return "\n".join(rows)


if __name__ == "__main__":
    import sys

    print(_table(Path(sys.argv[1])))
