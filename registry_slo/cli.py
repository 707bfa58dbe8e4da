"""Command line: ``registry-slo serve | probe | validate | generate | replay | demo |
openslo``."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from registry_slo import __version__
from registry_slo._units import format_duration, parse_duration
from registry_slo.config import (
    FORMAT_NAMES,
    ConfigError,
    Settings,
    load_config,
    web_protection,
)
from registry_slo.telemetry.logs import configure_logging

if TYPE_CHECKING:
    from registry_slo.report import PrometheusSource

__all__ = ["main"]

EXIT_CONFIG = 2
EXIT_FAILED = 1
"""``serve``: a part of the exporter died (service managers restart it on non-zero)."""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="registry-slo",
        description="SLO exporter for OCI container image registries.",
    )
    parser.add_argument("--version", action="version", version=f"registry-slo {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = commands.add_parser("serve", help="run the exporter (probes + /metrics)")
    serve.add_argument("--config", "-c", type=Path, help="YAML configuration file")
    serve.add_argument(
        "--region", action="append", default=None,
        help="serve only this region: its probes, SLOs and ingest sources (repeatable; "
        "one exporter per region, see docs/deploy.md)",
    )
    serve.add_argument(
        "--web.config.file", dest="web_config_file", type=Path, default=None,
        help="TLS, client certificates, Basic users and headers for every listener, in "
        "the Prometheus exporter-toolkit's format (overrides the web_config_file key)",
    )

    probe = commands.add_parser("probe", help="run probes and print their results")
    probe.add_argument("--config", "-c", type=Path, help="YAML configuration file")
    probe.add_argument(
        "--once", action="store_true", required=True, help="run each probe once, then exit"
    )
    probe.add_argument("--json", action="store_true", help="one JSON object per result")
    probe.add_argument(
        "--region", action="append", help="only this region (repeatable)", default=None
    )

    validate = commands.add_parser("validate", help="check a configuration file")
    validate.add_argument("--config", "-c", type=Path, required=True)

    generate = commands.add_parser(
        "generate",
        help="write Prometheus rules, promtool tests and Alertmanager routing for the SLOs",
    )
    generate.add_argument(
        "--config", "-c", type=Path, required=True,
        help="YAML configuration file (this repository's committed alerts/ and dashboards/ "
        "come from examples/regions.yaml)",
    )
    generate.add_argument(
        "--out", "-o", type=Path, default=Path("alerts"),
        help="output directory (default: alerts)",
    )
    generate.add_argument(
        "--dashboards", type=Path, default=None, metavar="DIR",
        help="where the Grafana dashboards go (default: 'dashboards' next to --out, "
        "e.g. alerts -> dashboards)",
    )
    generate.add_argument(
        "--no-dashboards", action="store_true",
        help="rules, tests and routing only: write or check no dashboards",
    )
    generate.add_argument(
        "--kubernetes", type=Path, default=None, metavar="DIR",
        help="where the Kubernetes base and per-region overlays go (default: "
        "'deploy/kubernetes' next to --out)",
    )
    generate.add_argument(
        "--no-kubernetes", action="store_true",
        help="write or check no Kubernetes manifests",
    )
    generate.add_argument(
        "--check", action="store_true",
        help="write nothing; exit 1 if --out, the dashboards or the Kubernetes manifests "
        "differ from a fresh generation",
    )

    replay = commands.add_parser(
        "replay",
        help="read registry log files once and print what the exporter would count",
    )
    replay.add_argument("files", nargs="+", type=Path, metavar="FILE")
    replay.add_argument(
        "--format", "-f", choices=FORMAT_NAMES, default=None,
        help="the log format (or take it from --config/--source)",
    )
    replay.add_argument(
        "--config", "-c", type=Path, default=None,
        help="configuration file: repository labels, and with --source a log source",
    )
    replay.add_argument(
        "--source", default=None, help="use this ingest.logs entry's format, region, mapping"
    )
    replay.add_argument(
        "--mapping", type=Path, default=None, help="YAML field mapping for --format jsonl"
    )
    replay.add_argument("--region", default=None, help="region label (default: replay)")
    replay.add_argument("--json", action="store_true", help="print one JSON document")

    demo = commands.add_parser(
        "demo", help="start local registries and an exporter probing them (quick start)"
    )
    demo.add_argument("--listen", default="127.0.0.1:9731", help="the exporter's address")
    demo.add_argument(
        "--workdir", type=Path, default=None, help="where registries keep their data"
    )

    openslo = commands.add_parser(
        "openslo", help="export the SLOs as OpenSLO v1, or import OpenSLO v1 / Sloth specs"
    )
    openslo_commands = openslo.add_subparsers(dest="openslo_command", required=True,
                                              metavar="ACTION")
    export = openslo_commands.add_parser(
        "export", help="print the configured SLOs as OpenSLO v1 documents (YAML)"
    )
    export.add_argument("--config", "-c", type=Path, required=True)
    export.add_argument("--out", "-o", type=Path, default=None,
                        help="write to this file instead of standard output")
    import_ = openslo_commands.add_parser(
        "import",
        help="print the slos: section equivalent to OpenSLO v1 or Sloth prometheus/v1 "
        "specs (exit 1 if anything could not be mapped)",
    )
    import_.add_argument("files", nargs="+", type=Path, metavar="FILE")

    report = commands.add_parser(
        "report", help="write the SLO review (HTML, Markdown, JSON) from Prometheus")
    report.add_argument("--config", "-c", type=Path, required=True)
    origin = report.add_mutually_exclusive_group(required=True)
    origin.add_argument("--prometheus", metavar="URL",
                        help="the Prometheus (Thanos, Mimir) that scrapes the exporter")
    origin.add_argument("--state-dir", type=Path, metavar="DIR",
                        help="without Prometheus: the exporter's state_dir (hourly counts "
                        "over the last SLO period; no registry-health section)")
    when = report.add_mutually_exclusive_group(required=True)
    when.add_argument("--month", help="a calendar month in UTC, YYYY-MM")
    when.add_argument("--last", metavar="DURATION", help="the last DURATION, e.g. 30d")
    when.add_argument("--from", dest="from_", metavar="TIME",
                      help="with --to: any range (RFC 3339 times or dates, UTC by default)")
    report.add_argument("--to", metavar="TIME")
    report.add_argument("--previous", default="before", metavar="before|none|YYYY-MM",
                        help="the span to compare with (default: the one before)")
    report.add_argument("--out", "-o", type=Path, default=Path("review"))
    report.add_argument("--step", default=None,
                        help="resolution of the counts and incidents (default 5m; 1h with "
                        "--state-dir)")
    report.add_argument("--prometheus-header", action="append", default=[],
                        metavar="'NAME: VALUE'",
                        help="sent with every query, e.g. 'X-Scope-OrgID: tenant' (repeatable)")
    report.add_argument("--bearer-token-file", type=Path)
    report.add_argument("--basic-user")
    report.add_argument("--basic-password-file", type=Path)
    report.add_argument("--ca-file", type=Path, help="CAs for the Prometheus certificate")
    return parser


def _load(path: Path | None) -> Settings:
    try:
        return load_config(path)
    except ConfigError as exc:
        print(f"registry-slo: {exc}", file=sys.stderr)
        raise SystemExit(EXIT_CONFIG) from None


def _known_regions(settings: Settings, names: list[str] | None) -> bool:
    """Whether every ``--region`` names a configured region (else says which do not)."""
    unknown = set(names or ()) - {r.name for r in settings.regions}
    if unknown:
        print(f"registry-slo: no such region: {', '.join(sorted(unknown))}", file=sys.stderr)
    return not unknown


def _serve(args: argparse.Namespace) -> int:
    from registry_slo.exporter import Exporter, ExporterFailed

    settings = _load(args.config)
    if args.web_config_file is not None:
        settings = settings.model_copy(update={"web_config_file": args.web_config_file})
        try:
            web_protection(settings)
        except ConfigError as exc:
            print(f"registry-slo: {exc}", file=sys.stderr)
            return EXIT_CONFIG
    configure_logging(settings.log_format, settings.log_level)
    if not (settings.regions or settings.ingest.logs or settings.ingest.notifications.endpoints):
        print("registry-slo: no regions and no ingest sources configured: nothing to do",
              file=sys.stderr)
        return EXIT_CONFIG
    if not _known_regions(settings, args.region):
        return EXIT_CONFIG
    try:
        asyncio.run(Exporter(settings, regions=args.region).run())
    except ExporterFailed as exc:
        print(f"registry-slo: stopped: {exc}", file=sys.stderr)
        return EXIT_FAILED
    return 0


def _probe(args: argparse.Namespace) -> int:
    from registry_slo.exporter import probe_once

    settings = _load(args.config)
    configure_logging(settings.log_format, "error" if args.json else settings.log_level)
    if not _known_regions(settings, args.region):
        return EXIT_CONFIG
    results = asyncio.run(probe_once(settings, args.region))
    for result in results:
        if args.json:
            print(json.dumps(result.to_json(), sort_keys=True))
        else:
            status = "ok" if result.success else f"FAILED {result.reason}"
            phases = " ".join(f"{k}={v * 1000:.1f}ms" for k, v in sorted(result.phases.items()))
            line = f"{result.region:<16} {result.operation:<5} {status:<22} "
            line += f"{result.duration_seconds * 1000:8.1f}ms  {phases}"
            if result.detail:
                line += f"\n{'':>23}{result.detail}"
            print(line)
    return 0 if all(r.success for r in results) else 1


def _validate(args: argparse.Namespace) -> int:
    settings = _load(args.config)
    probes = sum(len(r.probes) for r in settings.regions)
    print(f"{args.config}: ok ({len(settings.regions)} region(s), {probes} probe(s))")
    return 0


def _generate(args: argparse.Namespace) -> int:
    from registry_slo.generate import (
        GenerationError,
        check,
        dashboards,
        generate,
        kubernetes,
        warnings,
    )

    settings = _load(args.config)
    boards: Path | None = None
    if not args.no_dashboards:
        boards = args.dashboards if args.dashboards is not None else (
            args.out.parent / "dashboards"
        )
    manifests: Path | None = None
    if not args.no_kubernetes:
        manifests = args.kubernetes if args.kubernetes is not None else (
            args.out.parent / "deploy" / "kubernetes"
        )
    # The ConfigMap carries the file as written (comments too); _load has read it.
    config_text = args.config.read_text(encoding="utf-8")
    try:
        for warning in warnings(settings):
            print(f"registry-slo: warning: {warning}", file=sys.stderr)
        if args.check:
            stale = [(args.out, check(settings, args.out))]
            if boards is not None:
                stale.append((boards, dashboards.check(settings, boards)))
            if manifests is not None:
                stale.append((manifests, kubernetes.check(settings, config_text, manifests)))
            failed = False
            for directory, differences in stale:
                if not differences:
                    print(f"{directory}: up to date with {args.config}")
                    continue
                failed = True
                print(
                    f"registry-slo: {directory} is not what {args.config} generates "
                    f"({len(differences)} difference(s)):",
                    file=sys.stderr,
                )
                for line in differences:
                    print(f"  {line}", file=sys.stderr)
            if failed:
                extra = f" --dashboards {args.dashboards}" if args.dashboards else ""
                extra += f" --kubernetes {args.kubernetes}" if args.kubernetes else ""
                print(
                    f"run: registry-slo generate --config {args.config} --out {args.out}"
                    f"{extra}",
                    file=sys.stderr,
                )
                return 1
            return 0
        written = {args.out: generate(settings, args.out)}
        if boards is not None:
            written[boards] = dashboards.generate(settings, boards)
        if manifests is not None:
            written[manifests] = kubernetes.generate(settings, config_text, manifests)
    except GenerationError as exc:
        print(f"registry-slo: {args.config}: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    for directory, paths in written.items():
        print(f"{directory}: wrote {len(paths)} file(s) from {args.config}")
    return 0


def _replay(args: argparse.Namespace) -> int:
    from registry_slo.ingest import IngestConfig, JsonlMapping, replay

    configure_logging("auto", "error")
    ingest = _load(args.config).ingest if args.config is not None else IngestConfig()
    options: dict[str, Any] = {
        "repositories": ingest.repositories, "tag_memory": ingest.tag_memory,
    }
    log_format = args.format
    if args.source is not None:
        wanted = [s for s in ingest.logs if s.name == args.source]
        if args.config is None or not wanted:
            print(f"registry-slo: no ingest.logs entry named {args.source!r}", file=sys.stderr)
            return EXIT_CONFIG
        source = wanted[0]
        log_format = log_format or source.format
        options.update(region=source.region, source=source.name, mapping=source.mapping,
                       registries=source.registries, max_line_bytes=source.max_line_bytes)
    if log_format is None:
        print("registry-slo: replay needs --format or --config with --source", file=sys.stderr)
        return EXIT_CONFIG
    if args.mapping is not None:
        try:
            options["mapping"] = JsonlMapping(**yaml.safe_load(args.mapping.read_text()))
        except (OSError, yaml.YAMLError, TypeError, ValueError) as exc:
            print(f"registry-slo: {args.mapping}: {exc}", file=sys.stderr)
            return EXIT_CONFIG
    if log_format == "jsonl" and options.get("mapping") is None:
        print("registry-slo: --format jsonl needs --mapping (or --source)", file=sys.stderr)
        return EXIT_CONFIG
    if args.region is not None:
        options["region"] = args.region
    try:
        result = replay(args.files, log_format, **options)
    except OSError as exc:
        print(f"registry-slo: {exc.filename}: {exc.strerror}", file=sys.stderr)
        return 1
    data = result.to_json()
    if args.json:
        print(json.dumps(data, sort_keys=True))
        return 0
    print(f"{data['lines']} line(s) in {len(data['files'])} file(s), "
          f"{data['seconds']:.3f}s ({data['lines_per_second'] or 0:,.0f} lines/s)")
    print(f"  observations {data['observations']}")
    for kind in ("ignored", "rejected"):
        for reason, count in data[kind].items():
            print(f"  {kind:<12} {count:>10}  {reason}")
    for region, operations in data["requests"].items():
        for operation, codes in operations.items():
            failed = sum(data["failures"].get(region, {}).get(operation, {}).values())
            print(f"  {region} {operation:<14} {sum(codes.values()):>10} requests, "
                  f"{failed} failed  {dict(codes)}")
    if data["tag_overwrites"]:
        print(f"  tag overwrites {data['tag_overwrites']}")
    return 0


def _openslo(args: argparse.Namespace) -> int:
    from registry_slo.generate import GenerationError
    from registry_slo.interop import (
        dump_documents,
        export_openslo,
        import_documents,
        load_documents,
        slos_yaml,
    )

    if args.openslo_command == "export":
        settings = _load(args.config)
        try:
            text = dump_documents(export_openslo(settings))
        except GenerationError as exc:
            print(f"registry-slo: {args.config}: {exc}", file=sys.stderr)
            return EXIT_CONFIG
        if args.out is None:
            sys.stdout.write(text)
        else:
            args.out.write_text(text, encoding="utf-8")
            print(f"{args.out}: wrote {text.count('kind: SLO')} SLO document(s)")
        return 0
    documents = []
    try:
        for path in args.files:
            documents += load_documents(path.read_text(encoding="utf-8"), str(path))
    except OSError as exc:
        print(f"registry-slo: {exc.filename}: {exc.strerror}", file=sys.stderr)
        return EXIT_CONFIG
    except ValueError as exc:
        print(f"registry-slo: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    result = import_documents(documents)
    sys.stdout.write(slos_yaml(result))
    for line in result.skipped:
        print(f"registry-slo: not mapped: {line}", file=sys.stderr)
    for line in result.notes:
        print(f"registry-slo: dropped: {line}", file=sys.stderr)
    return 0 if result.complete else 1


def _demo(args: argparse.Namespace) -> int:
    from registry_slo.devenv.demo import run_demo

    configure_logging("auto", "info")
    return run_demo(listen=args.listen, workdir=args.workdir)


def _report_source(args: argparse.Namespace) -> PrometheusSource:
    """The Prometheus of ``report``.

    Raises:
        ValueError: an option is malformed or a file cannot be read.
    """
    headers = {}
    for header in args.prometheus_header:
        name, sep, value = header.partition(":")
        if not sep or not name.strip():
            raise ValueError(f"--prometheus-header {header!r} must be 'NAME: VALUE'")
        headers[name.strip()] = value.strip()

    def secret(path: Path, option: str) -> str:
        try:
            return path.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ValueError(f"{option} {path}: {exc.strerror}") from None

    token = secret(args.bearer_token_file, "--bearer-token-file") \
        if args.bearer_token_file else None
    basic = None
    if (args.basic_user is None) != (args.basic_password_file is None):
        raise ValueError("--basic-user and --basic-password-file go together")
    if args.basic_user is not None:
        basic = (args.basic_user, secret(args.basic_password_file, "--basic-password-file"))
    if args.ca_file is not None and not args.ca_file.is_file():
        raise ValueError(f"--ca-file {args.ca_file}: no such file")
    from registry_slo.report import PrometheusSource

    return PrometheusSource(args.prometheus, headers, token, basic, args.ca_file)


def _report(args: argparse.Namespace) -> int:
    from registry_slo.report import (
        ReportError,
        Span,
        StoreCounts,
        build_report,
        last,
        month,
        span_between,
        write_report,
    )

    settings = _load(args.config)
    try:
        if args.month is not None:
            span = month(args.month)
        elif args.last is not None:
            span = last(args.last, time.time())
        else:
            if args.to is None:
                raise ValueError("--from needs --to")
            span = span_between(args.from_, args.to)
        previous: Span | None = None
        if args.previous == "before":
            previous = span.previous()
        elif args.previous != "none":
            previous = month(args.previous)
        step = parse_duration(args.step or ("1h" if args.state_dir else "5m"))
        if not 60 <= step <= span.seconds:
            raise ValueError(f"--step {args.step or format_duration(step)} must be at least "
                             "1m and at most the span")
        source = StoreCounts(args.state_dir) if args.state_dir else _report_source(args)
    except (ValueError, ReportError) as exc:
        print(f"registry-slo: report: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    try:
        report = build_report(settings, source, span, previous, step)
        written = write_report(report, args.out)
    except ReportError as exc:
        print(f"registry-slo: report: {exc}", file=sys.stderr)
        return EXIT_FAILED
    finally:
        if not isinstance(source, StoreCounts):
            source.close()
    for path in written:
        print(path)
    for result in report.results:
        if result.status == "no data":
            print(f"registry-slo: report: {result.slo} in {result.region}: no data",
                  file=sys.stderr)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``registry-slo`` command."""
    args = _parser().parse_args(argv)
    handlers = {
        "serve": _serve,
        "probe": _probe,
        "validate": _validate,
        "generate": _generate,
        "replay": _replay,
        "demo": _demo,
        "openslo": _openslo,
        "report": _report,
    }
    try:
        return handlers[args.command](args)
    except KeyboardInterrupt:
        return 130
