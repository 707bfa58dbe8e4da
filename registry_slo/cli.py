"""Command line: ``registry-slo serve | probe | validate | demo``."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from registry_slo import __version__
from registry_slo.config import ConfigError, Settings, load_config
from registry_slo.telemetry.logs import configure_logging

__all__ = ["main"]

EXIT_CONFIG = 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="registry-slo",
        description="SLO exporter for OCI container image registries.",
    )
    parser.add_argument("--version", action="version", version=f"registry-slo {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = commands.add_parser("serve", help="run the exporter (probes + /metrics)")
    serve.add_argument("--config", "-c", type=Path, help="YAML configuration file")

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

    demo = commands.add_parser(
        "demo", help="start local registries and an exporter probing them (quick start)"
    )
    demo.add_argument("--listen", default="127.0.0.1:9731", help="the exporter's address")
    demo.add_argument(
        "--workdir", type=Path, default=None, help="where registries keep their data"
    )
    return parser


def _load(path: Path | None) -> Settings:
    try:
        return load_config(path)
    except ConfigError as exc:
        print(f"registry-slo: {exc}", file=sys.stderr)
        raise SystemExit(EXIT_CONFIG) from None


def _serve(args: argparse.Namespace) -> int:
    from registry_slo.exporter import Exporter

    settings = _load(args.config)
    configure_logging(settings.log_format, settings.log_level)
    if not settings.regions:
        print("registry-slo: no regions configured: nothing to probe", file=sys.stderr)
        return EXIT_CONFIG
    asyncio.run(Exporter(settings).run())
    return 0


def _probe(args: argparse.Namespace) -> int:
    from registry_slo.exporter import probe_once

    settings = _load(args.config)
    configure_logging(settings.log_format, "error" if args.json else settings.log_level)
    unknown = set(args.region or ()) - {r.name for r in settings.regions}
    if unknown:
        print(f"registry-slo: no such region: {', '.join(sorted(unknown))}", file=sys.stderr)
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
    probes = sum(len(r.probe.enabled) for r in settings.regions)
    print(f"{args.config}: ok ({len(settings.regions)} region(s), {probes} probe(s))")
    return 0


def _demo(args: argparse.Namespace) -> int:
    from registry_slo.devenv.demo import run_demo

    configure_logging("auto", "info")
    return run_demo(listen=args.listen, workdir=args.workdir)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``registry-slo`` command."""
    args = _parser().parse_args(argv)
    handlers = {
        "serve": _serve,
        "probe": _probe,
        "validate": _validate,
        "demo": _demo,
    }
    try:
        return handlers[args.command](args)
    except KeyboardInterrupt:
        return 130
