"""Grafana dashboards generated from the configuration with grafana-foundation-sdk.

Three dashboards that link to each other (see ``docs/dashboards.md``):

- **Executive** (``registry-slo-executive``): SLOs against their objectives, error
  budget left, what users' pushes and pulls see;
- **On-call** (``registry-slo-oncall``): firing alerts and burn rates, latency, auth,
  failure reasons, replication lag, probes not running;
- **Debug** (``registry-slo-debug``): per-phase timings with exemplar links to traces,
  pushes per repository, replication and cache detail, ingest and exporter health.

They read the exporter's metrics and the ``slo:*`` series of the generated recording
rules (Sloth's names and labels), with template variables ``datasource``, ``region`` and
``slo``. Output layout (relative to the output directory, e.g. ``dashboards/``)::

    README.md                       what is here and how to import it
    registry-slo-executive.json
    registry-slo-oncall.json
    registry-slo-debug.json

Generation is deterministic (sorted keys, fixed ids), so :func:`check` can compare a
committed copy with a fresh generation.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import dashboard as models

from registry_slo.config import Settings
from registry_slo.generate._files import compare_generated, marked_files, write_generated
from registry_slo.generate._model import GenerationError
from registry_slo.generate.dashboards import debug, executive, oncall
from registry_slo.generate.dashboards._context import DashboardContext
from registry_slo.generate.dashboards._kit import GENERATED_MARKER, DashboardRef
from registry_slo.generate.dashboards._lint import (
    SCHEMA_VERSION,
    iter_panels,
    iter_targets,
    lint,
    lint_set,
)

__all__ = [
    "DASHBOARDS",
    "SCHEMA_VERSION",
    "build",
    "check",
    "generate",
    "iter_panels",
    "iter_targets",
    "lint",
    "lint_set",
    "render",
]

DASHBOARDS: tuple[DashboardRef, ...] = (executive.EXECUTIVE, oncall.ONCALL, debug.DEBUG)
"""The generated dashboards (uid and title), in the order they link."""


def build(settings: Settings) -> dict[str, models.Dashboard]:
    """The three dashboards as grafana-foundation-sdk models, by file name.

    Args:
        settings: the validated configuration.
    """
    ctx = DashboardContext.from_settings(settings)
    exe, onc, dbg = DASHBOARDS
    return {
        f"{exe.uid}.json": executive.build(ctx, onc, dbg),
        f"{onc.uid}.json": oncall.build(ctx, exe, dbg),
        f"{dbg.uid}.json": debug.build(ctx, exe, onc),
    }


def _readme() -> str:
    lines = [
        f"<!-- {GENERATED_MARKER} from the configuration. Do not edit. -->",
        "# Generated Grafana dashboards",
        "",
        "Import these JSON files into Grafana (Dashboards → New → Import, or file "
        "provisioning). Each asks for a Prometheus data source that scrapes the exporter "
        "and evaluates the generated rules in `alerts/rules/`. See `docs/dashboards.md` "
        "for every panel, and for linking exemplars to traces.",
        "",
        "| file | uid | dashboard |",
        "|---|---|---|",
    ]
    lines += [f"| {ref.uid}.json | `{ref.uid}` | {ref.title} |" for ref in DASHBOARDS]
    return "\n".join([*lines, ""])


def render(settings: Settings) -> dict[str, str]:
    """Every generated file's text, by path relative to the output directory.

    Raises:
        GenerationError: when a generated dashboard fails the structural checks of
            :func:`lint_set` (a bug; the message lists the problems).
    """
    files = {
        name: json.dumps(board, cls=JSONEncoder, indent=2, sort_keys=True,
                         ensure_ascii=False) + "\n"
        for name, board in build(settings).items()
    }
    problems = lint_set({name: json.loads(text) for name, text in files.items()})
    if problems:
        raise GenerationError("generated dashboards are not sound: " + "; ".join(problems))
    files["README.md"] = _readme()
    return dict(sorted(files.items()))


def _is_generated(path: Path, text: str) -> bool:
    if path.suffix == ".md":
        return GENERATED_MARKER in text[:300]
    try:
        doc: Any = json.loads(text)
    except ValueError:
        return False
    return isinstance(doc, dict) and str(doc.get("description", "")).startswith(
        GENERATED_MARKER)


def _generated_files(directory: Path) -> dict[str, Path]:
    if not directory.is_dir():
        return {}
    candidates = sorted(p for p in directory.iterdir() if p.suffix in (".json", ".md"))
    return marked_files(directory, candidates, _is_generated)


def generate(settings: Settings, out_dir: str | Path) -> list[Path]:
    """Write the dashboards into ``out_dir``, removing dashboards an earlier generation
    wrote that are no longer produced.

    Returns:
        The paths written, sorted.

    Raises:
        GenerationError: a file to write exists and was not generated (it is never
            overwritten).
    """
    out = Path(out_dir)
    return write_generated(render(settings), out, _generated_files(out), "--dashboards")


def check(settings: Settings, committed_dir: str | Path) -> list[str]:
    """Compare ``committed_dir`` (e.g. the repository's ``dashboards/``) with a fresh
    generation.

    Returns:
        One line per missing, stale or changed file; empty when up to date.
    """
    directory = Path(committed_dir)
    return compare_generated(render(settings), _generated_files(directory), directory)
