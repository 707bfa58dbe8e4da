"""What the generators share: the labels of a target's ``slo:*`` series, label selectors,
and number formatting for PromQL."""

from __future__ import annotations

from registry_slo._units import format_duration
from registry_slo.config import SLOTarget

__all__ = [
    "GenerationError",
    "identity",
    "num",
    "period_name",
    "selector",
    "slo_selector",
]


class GenerationError(Exception):
    """The configuration cannot be turned into rules; the message names the SLO."""


def identity(target: SLOTarget) -> dict[str, str]:
    """The labels every ``slo:*`` series of a target carries.

    Sloth's labels, so Sloth's dashboards work: ``sloth_service`` is the region (the
    registry in that region is the service), ``sloth_slo`` the SLO name; ``region`` is
    kept for routing and for the exporter's own dashboards.
    """
    return {
        "region": target.region,
        "sloth_id": target.sloth_id,
        "sloth_service": target.region,
        "sloth_slo": target.slo.name,
    }


def slo_selector(target: SLOTarget) -> str:
    """The label matcher that selects a target's ``slo:*`` series."""
    return f'{{sloth_id="{target.sloth_id}"}}'


def period_name(target: SLOTarget) -> str:
    """The target's period as a Prometheus duration (``30d``)."""
    return format_duration(target.slo.period_seconds)


def selector(**labels: str | tuple[str, ...]) -> str:
    """A PromQL label selector; a tuple of values becomes an alternation (``=~"a|b"``).

    >>> selector(region="us-east", operation=("pull_manifest", "pull_blob"))
    '{region="us-east",operation=~"pull_manifest|pull_blob"}'
    """
    parts = []
    for key, value in labels.items():
        if isinstance(value, tuple):
            if len(value) != 1:
                parts.append(f'{key}=~"{"|".join(value)}"')
                continue
            value = value[0]
        parts.append(f'{key}="{value}"')
    return "{" + ",".join(parts) + "}"


def num(value: float) -> str:
    """A number as PromQL and YAML should show it: ``0.001``, ``14.4``, ``30``."""
    text = f"{value:.12g}"
    if "e" in text:
        text = f"{value:.15f}".rstrip("0").rstrip(".")
    return text
