"""What an import produced: the ``slos:`` entries, and everything that did not map."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from pydantic import ValidationError

from registry_slo.config import SLO_NAME, SLOSpec, label_name_problem

__all__ = ["ImportResult", "clean_labels", "dns_label", "percent_from_ratio", "slo_name"]



@dataclass
class ImportResult:
    """The outcome of importing SLO documents.

    Attributes:
        slos: ``slos:`` entries of the exporter's configuration (validated).
        notes: what was dropped or changed while mapping an SLO that did map.
        skipped: SLOs (or documents) that could not be mapped at all, with the reason.
    """

    slos: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    def add(self, where: str, slo: dict[str, Any], notes: list[str]) -> None:
        """Add a mapped SLO (validated as the configuration would), merging it with an
        equal one that differs only in its regions (and, for traffic SLIs, in the
        ingest sources of those regions: their union is kept)."""
        try:
            SLOSpec(**slo)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(map(str, e['loc']))}: {e['msg'].removeprefix('Value error, ')}"
                for e in exc.errors(include_url=False)
            )
            self.skipped.append(f"{where}: not a valid SLO of the exporter ({problems})")
            return
        self.notes.extend(f"{where}: {note}" for note in notes)
        for existing in self.slos:
            if existing == slo:
                return  # the same SLO twice
            if _merge(existing, slo):
                return
            if existing["name"] == slo["name"]:
                self.skipped.append(
                    f"{where}: another SLO named {slo['name']!r} was imported already and "
                    "differs in more than its regions (and traffic sources)"
                )
                return
        self.slos.append(slo)

    @property
    def complete(self) -> bool:
        """True when everything mapped without dropping anything."""
        return not self.notes and not self.skipped


def _merge(existing: dict[str, Any], slo: dict[str, Any]) -> bool:
    """Merge ``slo`` into ``existing`` when they differ only in regions and sources."""
    def rest(entry: dict[str, Any]) -> dict[str, Any]:
        sli = {k: v for k, v in entry["sli"].items() if k != "sources"}
        return {**{k: v for k, v in entry.items() if k != "regions"}, "sli": sli}

    if not existing.get("regions") or not slo.get("regions") or rest(existing) != rest(slo):
        return False
    sources, more = existing["sli"].get("sources"), slo["sli"].get("sources")
    if sources != more:
        # A source reads one region: the union keeps what each region counts, unless
        # the SLO came twice for a region with different sources, or once without any.
        if sources is None or more is None or set(existing["regions"]) & set(slo["regions"]):
            return False
        existing["sli"] = {**existing["sli"], "sources": list(dict.fromkeys([*sources, *more]))}
    existing["regions"] = list(dict.fromkeys([*existing["regions"], *slo["regions"]]))
    return True


def dns_label(*parts: str) -> str:
    """``parts`` joined by ``-`` as a DNS label: lowercase letters, digits and ``-``, at
    most 63 characters (the rule for SLO names and for OpenSLO's ``metadata.name``)."""
    label = re.sub(r"[^a-z0-9-]+", "-", "-".join(parts).lower()).strip("-")
    return label[:63].rstrip("-")


def slo_name(name: str, notes: list[str]) -> str:
    """An SLO name the exporter accepts (lowercase letters, digits, ``-``)."""
    cleaned = dns_label(name)
    if not SLO_NAME.fullmatch(cleaned):
        cleaned = "imported-slo"
    if cleaned != name:
        notes.append(f"name {name!r} renamed to {cleaned!r}")
    return cleaned


def clean_labels(labels: dict[str, Any], notes: list[str]) -> dict[str, str]:
    """The labels an SLO may carry; the others are dropped with a note."""
    out: dict[str, str] = {}
    for key, value in labels.items():
        if isinstance(value, list):
            if len(value) != 1:
                notes.append(f"label {key}: {len(value)} values, a label has one: dropped")
                continue
            value = value[0]
        text = str(value)
        if label_name_problem(str(key)) is not None:
            notes.append(f"label {key}: reserved or not a Prometheus label name: dropped")
        elif not text:
            notes.append(f"label {key}: empty value: dropped")
        else:
            out[str(key)] = text
    return out


def percent_from_ratio(ratio: float) -> float:
    """``0.999`` → ``99.9`` without float noise."""
    return float(Decimal(repr(float(ratio))) * 100)
