"""Interoperability: OpenSLO v1 export and import, Sloth ``prometheus/v1`` import.

- :func:`export_openslo` turns the configured SLOs into OpenSLO v1 documents.
- :func:`import_documents` reads OpenSLO v1 and Sloth ``prometheus/v1`` documents (told
  apart by ``apiVersion`` / ``version``) and maps those whose queries read the
  exporter's series onto ``slos:`` entries, saying what could not be mapped.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

import yaml

from registry_slo.interop._result import ImportResult
from registry_slo.interop.openslo import API_VERSION, export_openslo, import_openslo
from registry_slo.interop.sloth import SLOTH_VERSION, import_sloth

__all__ = [
    "ImportResult",
    "dump_documents",
    "export_openslo",
    "import_documents",
    "load_documents",
    "slos_yaml",
]


def load_documents(text: str, source: str) -> list[tuple[str, Mapping[str, Any]]]:
    """Every document of a YAML stream (a top-level list counts as several).

    Args:
        text: the YAML.
        source: the file name, for ``where`` (``file.yaml#2``).

    Raises:
        ValueError: when the text is not YAML.
    """
    out: list[tuple[str, Mapping[str, Any]]] = []
    try:
        loaded = list(yaml.safe_load_all(text))
    except yaml.YAMLError as exc:
        raise ValueError(f"{source}: not valid YAML: {exc}") from None
    for document in loaded:
        items = document if isinstance(document, list) else [document]
        for item in items:
            if item is None:
                continue
            where = f"{source}#{len(out) + 1}"
            if not isinstance(item, Mapping):
                raise ValueError(f"{where}: a document must be a mapping")
            out.append((where, item))
    return out


def import_documents(documents: Iterable[tuple[str, Mapping[str, Any]]]) -> ImportResult:
    """Map OpenSLO v1 and Sloth ``prometheus/v1`` documents onto ``slos:`` entries."""
    docs = list(documents)
    result = ImportResult()
    openslo = [(w, d) for w, d in docs if "apiVersion" in d]
    sloth = [(w, d) for w, d in docs if "apiVersion" not in d and "version" in d]
    known = {w for w, _ in openslo + sloth}
    for where, _ in docs:
        if where not in known:
            result.skipped.append(
                f"{where}: neither OpenSLO ({API_VERSION}) nor Sloth ({SLOTH_VERSION})")
    import_openslo(openslo, result)
    import_sloth(sloth, result)
    if docs and not any(d.get("kind") == "SLO" for _, d in openslo) and not sloth:
        kinds = Counter(str(d.get("kind") or "(no kind)") for _, d in docs)
        found = ", ".join(f"{count} {kind}" for kind, count in sorted(kinds.items()))
        result.skipped.append(f"no SLO document in the input (found {found}): SLI, Service "
                              "and DataSource documents are read only through the SLOs that "
                              "refer to them")
    return result


def slos_yaml(result: ImportResult) -> str:
    """The ``slos:`` section for the exporter's configuration, with a header comment
    listing what could not be mapped."""
    lines = ["# Imported by registry-slo openslo import."]
    if result.skipped:
        lines.append("# Not mapped:")
        lines += [f"#   {line}" for line in result.skipped]
    if result.notes:
        lines.append("# Dropped or changed:")
        lines += [f"#   {line}" for line in result.notes]
    lines.append("# Regions (and traffic SLIs' sources) named here must exist in the "
                 "configuration.")
    body = yaml.safe_dump({"slos": result.slos}, sort_keys=False, allow_unicode=True)
    return "\n".join(lines) + "\n" + body


def dump_documents(documents: Iterable[Mapping[str, Any]]) -> str:
    """A multi-document YAML stream."""
    return yaml.safe_dump_all([dict(d) for d in documents], sort_keys=False,
                              allow_unicode=True)
