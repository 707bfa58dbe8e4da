"""``registry-slo generate``: Prometheus rules, promtool tests and Alertmanager routing
from the ``slos`` and ``alerting`` sections of the configuration.

Output layout (all paths relative to the output directory)::

    README.md                    what is here and how to load it
    rules/slo-<name>.yml         per SLO: one group per region, recording rules then alerts
    rules/registry.yml           registry alerts, one group per region
    rules/kubelet.yml            image pulls as the kubelets see them (``kubernetes:``)
    tests/slo-<name>.test.yml    promtool unit tests of rules/slo-<name>.yml
    tests/registry.test.yml      promtool unit tests of rules/registry.yml
    tests/kubelet.test.yml       promtool unit tests of rules/kubelet.yml
    alertmanager/alertmanager.yml

Generation is deterministic: the same configuration always gives byte-identical files,
so :func:`check` can compare a committed copy with a fresh generation.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, assert_never

from registry_slo._units import human_duration
from registry_slo.config import (
    MIN_SCRAPES_PER_WINDOW,
    AuthSuccessSLI,
    ProbeLatencySLI,
    ProbeSuccessSLI,
    ReplicationLagSLI,
    Settings,
    SLOTarget,
    TrafficLatencySLI,
    TrafficSuccessSLI,
    sli_summary,
)
from registry_slo.generate import alerts, promtool_tests, rules
from registry_slo.generate._files import MARKER, compare_generated, marked_files, write_generated
from registry_slo.generate._model import GenerationError, num, period_name
from registry_slo.generate._yaml import HEADER, dump
from registry_slo.generate.alertmanager import alertmanager_config
from registry_slo.generate.alerts._kubelet import kubelet_group
from registry_slo.sli.windows import BURN_RATE_TIERS, single_failure_burn

__all__ = ["GenerationError", "check", "generate", "render", "rule_groups", "warnings"]

_OWNED_DIRS = ("rules", "tests", "alertmanager")


def _slo_rule_groups(
    targets: list[SLOTarget], settings: Settings
) -> list[tuple[str, dict[str, Any]]]:
    groups = []
    for target in targets:
        group_rules = rules.recording_rules(target, settings.alerting.rule_mode,
                                            settings.prometheus.evaluation_interval)
        group_rules += alerts.burn_rate_alerts(target, settings.alerting)
        group_rules.append(alerts.absent_alert(target, settings.alerting))
        groups.append((target.region, {
            "name": f"registry-slo/slo/{target.slo.name}/{target.region}", "rules": group_rules,
        }))
    return groups


def _slos_by_name(settings: Settings) -> dict[str, list[SLOTarget]]:
    by_slo: dict[str, list[SLOTarget]] = {}
    for target in settings.slo_targets():
        by_slo.setdefault(target.slo.name, []).append(target)
    return by_slo


def rule_groups(settings: Settings) -> dict[str, list[tuple[str, dict[str, Any]]]]:
    """Every rule file's groups, each with the region it is for.

    Returns:
        ``{path relative to the output directory ("rules/…yml"): [(region, group)]}``;
        every group belongs to exactly one region, so a regional Prometheus (or a
        PrometheusRule per region) can load that region's groups alone.

    Raises:
        GenerationError: when an SLO cannot be expressed in PromQL.
    """
    files = {
        f"rules/slo-{name}.yml": _slo_rule_groups(targets, settings)
        for name, targets in _slos_by_name(settings).items()
    }
    if settings.regions:
        files["rules/registry.yml"] = [
            (region.name, group)
            for region, group in zip(settings.regions, alerts.registry_alerts(settings),
                                     strict=True)
        ]
    return files


def _readme(by_slo: dict[str, list[SLOTarget]], settings: Settings) -> str:
    lines = [
        f"<!-- {MARKER} from the configuration. Do not edit. -->",
        "# Generated SLO rules and alert routing",
        "",
        f"Rule mode: `{settings.alerting.rule_mode}`. See `docs/slos.md` for what each "
        "file contains and how to load it.",
        "",
        "| SLO | SLI | objective | period | regions |",
        "|---|---|---|---|---|",
    ]
    for name, targets in by_slo.items():
        slo = targets[0].slo
        regions = ", ".join(t.region for t in targets)
        lines.append(
            f"| {name} | {sli_summary(targets[0].slo.sli)} | {num(slo.objective)}% | "
            f"{period_name(targets[0])} | {regions} |"
        )
    lines += [
        "",
        "```sh",
        "promtool check rules rules/*.yml",
        "promtool test rules tests/*.test.yml",
        "amtool check-config alertmanager/alertmanager.yml",
        "```",
        "",
    ]
    return "\n".join(lines)


def render(settings: Settings) -> dict[str, str]:
    """Every generated file's text, by path relative to the output directory.

    Args:
        settings: the validated configuration.

    Returns:
        ``{relative path: text}``, sorted by path.

    Raises:
        GenerationError: when an SLO cannot be expressed in PromQL (the message names it).
    """
    by_slo = _slos_by_name(settings)
    files = {
        path: dump({"groups": [group for _, group in groups]})
        for path, groups in rule_groups(settings).items()
    }
    for name, targets in by_slo.items():
        rule_file = f"rules/slo-{name}.yml"
        files[f"tests/slo-{name}.test.yml"] = dump(
            promtool_tests.slo_test_file(targets, f"../{rule_file}", settings.alerting,
                                         promtool_tests.Timing.of(settings.prometheus)),
            comment=f"promtool test rules: proves {rule_file} (see docs/slos.md).",
        )
    if settings.regions:
        registry_tests = promtool_tests.registry_test_file(settings, "../rules/registry.yml")
        if registry_tests is not None:
            files["tests/registry.test.yml"] = dump(
                registry_tests, comment="promtool test rules: proves rules/registry.yml."
            )
    if settings.kubernetes is not None:
        # Cluster-wide, not per region: not in rule_groups (whose groups each belong to
        # one region's Prometheus); load it where the kubelets are scraped.
        files["rules/kubelet.yml"] = dump({"groups": [
            kubelet_group(settings.kubernetes, settings.alerting, settings.prometheus)]})
        kubelet_tests = promtool_tests.kubelet_test_file(settings, "../rules/kubelet.yml")
        if kubelet_tests is not None:
            files["tests/kubelet.test.yml"] = dump(
                kubelet_tests, comment="promtool test rules: proves rules/kubelet.yml.")
    files["alertmanager/alertmanager.yml"] = dump(
        alertmanager_config(settings.alerting, [r.name for r in settings.regions]),
        comment="amtool check-config alertmanager.yml; see docs/slos.md for the routing.",
    )
    files["README.md"] = _readme(by_slo, settings)
    return dict(sorted(files.items()))


def _generated_files(directory: Path) -> dict[str, Path]:
    """Files under ``directory`` that a previous generation wrote (they carry the marker)."""
    candidates = [directory / "README.md"]
    for sub in _OWNED_DIRS:
        if (directory / sub).is_dir():
            candidates += sorted(p for p in (directory / sub).rglob("*") if p.is_file())
    return marked_files(directory, candidates, lambda _, text: MARKER in text[:300]
                        or text.startswith(HEADER[:40]))


def generate(settings: Settings, out_dir: str | Path) -> list[Path]:
    """Write every generated file into ``out_dir``, removing files an earlier generation
    wrote that are no longer produced (e.g. of a deleted SLO).

    Args:
        settings: the validated configuration.
        out_dir: the output directory (created if missing).

    Returns:
        The paths written, sorted.

    Raises:
        GenerationError: when an SLO cannot be expressed in PromQL, or a file to write
            exists and was not generated (it is never overwritten).
    """
    out = Path(out_dir)
    return write_generated(render(settings), out, _generated_files(out), "--out")


def check(settings: Settings, committed_dir: str | Path) -> list[str]:
    """Compare ``committed_dir`` with a fresh generation.

    Args:
        settings: the validated configuration the directory should come from.
        committed_dir: e.g. the repository's ``alerts/``.

    Returns:
        One line per difference (missing, stale or changed file, with the first changed
        line); empty when the directory is up to date.

    Raises:
        GenerationError: when an SLO cannot be expressed in PromQL.
    """
    directory = Path(committed_dir)
    return compare_generated(render(settings), _generated_files(directory), directory)


def _single_failure_warning(target: SLOTarget, evaluation: float) -> str | None:
    """The warning when one bad event (a failed probe, a minute of lag) pages."""
    slo = target.slo
    sli = slo.sli
    fast = BURN_RATE_TIERS[0]
    factor = fast.factor(slo.period_seconds)
    match sli:
        case TrafficSuccessSLI() | TrafficLatencySLI():
            return None  # how many events an hour holds depends on the users
        case ReplicationLagSLI():
            # Lag is sampled once per rule evaluation.
            burn = single_failure_burn(1 / evaluation, fast.long_window, slo.objective_ratio)
            if burn <= factor:
                return None
            step = human_duration(evaluation)
            return (
                f"SLO {slo.name!r} in {target.region}: lag is sampled once per rule "
                f"evaluation; with {step} evaluations one sample behind burns "
                f"{num(round(burn, 1))}x the budget over 1h, above the {num(factor)}x "
                f"page threshold: one bad evaluation pages. Lower the objective."
            )
        case ProbeSuccessSLI() | ProbeLatencySLI() | AuthSuccessSLI():
            burn = single_failure_burn(1 / target.probe_interval, fast.long_window,
                                       slo.objective_ratio)
            if burn <= factor:
                return None
            runs = round(fast.long_window / target.probe_interval)
            return (
                f"SLO {slo.name!r} in {target.region}: with a probe every "
                f"{human_duration(target.probe_interval)} ({runs} runs an hour), one failed "
                f"probe burns {num(round(burn, 1))}x the budget over 1h, above the "
                f"{num(factor)}x page threshold: a single failure pages. Lower the "
                "objective or probe more often."
            )
        case _:
            assert_never(sli)


def warnings(settings: Settings) -> list[str]:
    """Configurations that generate valid rules that will not behave as people expect.

    - an objective so high that a single failed probe (or, for replication lag, a
      single minute behind) pages: the 1h window holds too few events;
    - an objective so low that even a full outage cannot page;
    - a window raised to four scrapes of ``prometheus.scrape_interval``.
    """
    out = []
    fast = BURN_RATE_TIERS[0]
    for target in settings.slo_targets():
        slo = target.slo
        factor = fast.factor(slo.period_seconds)
        if factor * (1 - slo.objective_ratio) >= 1:
            out.append(
                f"SLO {slo.name!r} in {target.region}: at {num(slo.objective)}% even a full "
                f"outage burns less than {num(factor)}x; it can never page"
            )
            continue
        warning = _single_failure_warning(target, settings.prometheus.evaluation_interval)
        if warning is not None:
            out.append(warning)
    scrape = human_duration(settings.prometheus.scrape_interval)
    for region in settings.regions:
        nominal = alerts.SKIPPED_INTERVALS * region.probe.interval
        window = alerts.skipped_window(region, settings.prometheus)
        if window > nominal:
            out.append(
                f"region {region.name!r}: {alerts.SKIPPED_ALERT} counts skipped runs over "
                f"{human_duration(window)}, not {alerts.SKIPPED_INTERVALS} probe intervals "
                f"({human_duration(nominal)}): a window must hold "
                f"{MIN_SCRAPES_PER_WINDOW} scrapes of "
                f"prometheus.scrape_interval ({scrape})"
            )
    return out
