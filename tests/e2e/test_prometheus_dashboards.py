"""The generated rules and dashboards against real components, end to end.

Real registries (Debian's docker-registry): ``us-east`` (primary), ``eu-west`` (a
mirror kept in sync by ``skopeo sync`` every second) and ``ap-south-cache`` (a
pull-through cache of us-east), a client pushing and pulling images (and asking for a
missing one) on us-east and eu-west, ``registry-slo serve`` probing all three every 2 s, sending
traces to an OTLP receiver and reading both registries' logs, and a real Prometheus
scraping it every second with the rules ``registry-slo generate`` writes for the same
SLOs as ``examples/regions.yaml``.

The probes reach eu-west through the fault proxy, which adds the rate-limit headers of a
metered registry to its answers (the rate-limit panels then have series).

Garbage collection (M8): us-east's ``distribution-gc`` source reads one log that the real
collector appends to, as cron would: a dry run on us-east's storage (after its outage:
stopped, nothing writes), and a real run on a dedicated registry's storage that holds
known garbage (a manifest deleted by digest, an untagged manifest), so the runs, the
deletions and the reclaimed bytes the garbage collection panels show are real.

Shortened intervals (stated as the issue asks): probes every 2 s (example: 30 s),
scrapes every 1 s, and rule evaluation every 2 s instead of the 1 m the generated
promtool tests assume. The rules themselves are the generated ones, unchanged.

Proved here:

1. every ``slo:*`` recording of every (SLO, region) exists in Prometheus;
2. stopping the us-east registry makes ``RegistrySLOBurnRatePage`` (pull-availability,
   1h/5m) fire within the bound the generated promtool test states (2m at 99.9%);
3. every query of every panel of the three generated dashboards, with the template
   variables substituted, evaluates without error and returns series; the dashboards'
   variable queries return the configured regions and SLOs; the exemplar queries of the
   latency panels return exemplars whose trace ids the OTLP receiver received.

Panels are evaluated after the outage: then alerts fire and failures have reasons, so
the "firing alerts" and "failures by reason" panels legitimately have rows. A query
that needs more time (the per-repository "last push" table samples at minute steps) is
polled until it has series, within a deadline: none is skipped.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import secrets
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from conftest import require_binary
from harness import FaultMode, FaultProxy, push_image
from harness.otlp import OTLPReceiver
from harness.prometheus import LocalPrometheus, PrometheusQueryError, scrape_job
from ingest.gc_storage import Garbage, make_garbage, run_gc

from registry_slo._units import parse_duration
from registry_slo.config import Settings, load_config
from registry_slo.devenv import LocalRegistry, free_port
from registry_slo.devenv.mirror import SkopeoSyncLoop
from registry_slo.generate import dashboards as dashboards_module
from registry_slo.generate import generate
from registry_slo.generate._model import period_name
from registry_slo.generate.dashboards import iter_targets
from registry_slo.ingest.formats.gc import SETTLE

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "regions.yaml"
COMMITTED_DASHBOARDS = REPO / "dashboards"

PROBE_INTERVAL = "2s"
SCRAPE_INTERVAL = 1.0
EVALUATION_INTERVAL = 2.0
"""Rule evaluation every 2 s (the generated promtool tests assume 1 m)."""
WARM_UP_TIMEOUT = 60.0
PANEL_DEADLINE = 90.0
"""How long, in total, queries without series yet are polled before the test fails: the
per-repository "last push" table samples at whole minutes, so it can need one more
minute boundary after the first push (plus a scrape), and more on a busy machine."""

SUBSTITUTIONS = {"__rate_interval": "1m", "__range": "15m", "__interval": "5s"}
RECORDINGS = (
    "slo:sli_error:ratio_rate5m", "slo:sli_error:ratio_rate30m", "slo:sli_error:ratio_rate1h",
    "slo:sli_error:ratio_rate2h", "slo:sli_error:ratio_rate6h", "slo:sli_error:ratio_rate1d",
    "slo:sli_error:ratio_rate3d", "slo:objective:ratio", "slo:error_budget:ratio",
    "slo:time_period:days", "slo:current_burn_rate:ratio", "slo:period_burn_rate:ratio",
    "slo:period_error_budget_remaining:ratio", "slo:info",
)


@dataclass
class ClientTraffic:
    """Pushes (an image, its signature and, every other round, its SBOM), pulls and a
    missing-tag pull on a registry, once a second (not probes: the registry logs them
    with httpx's user agent, so ingest counts them)."""

    registry: LocalRegistry
    rounds: int = 0
    errors: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def _run(self) -> None:
        with httpx.Client(trust_env=False, timeout=5.0) as client:
            while not self._stop.is_set():
                try:
                    image = push_image(client, self.registry.url, "team/app", "v1",
                                       layer=secrets.token_bytes(512))
                    # Cosign's tag layout for a signature and an SBOM of that image
                    # (what the signed-image and SBOM coverage panels count).
                    attached = image.manifest_digest.replace(":", "-")
                    push_image(client, self.registry.url, "team/app", f"{attached}.sig")
                    if self.rounds % 2 == 0:
                        push_image(client, self.registry.url, "team/app", f"{attached}.sbom")
                    client.get(f"{self.registry.url}/v2/team/app/manifests/v1",
                               headers={"Accept": "application/vnd.oci.image.manifest.v1+json"})
                    client.get(f"{self.registry.url}/v2/team/app/blobs/{image.layer_digest}")
                    client.get(f"{self.registry.url}/v2/team/app/manifests/missing")  # 404
                    self.rounds += 1
                except httpx.HTTPError:
                    self.errors += 1
                self._stop.wait(1.0)

    def start(self) -> None:
        """Start in a background thread."""
        self._thread = threading.Thread(target=self._run, name="client-traffic", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop after the current round."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=15)


@dataclass
class Stack:
    """Everything running, and what the scenario measured."""

    settings: Settings
    prometheus: LocalPrometheus
    us_east: LocalRegistry
    receiver: OTLPReceiver
    exporter: subprocess.Popen[bytes]
    exporter_log: Path
    out: Path
    page_bound: float
    gc_log: Path
    gc_target: LocalRegistry
    garbage: Garbage
    stopped_at: float | None = None
    page_after: float | None = None
    gc_at: float | None = None

    def exporter_tail(self) -> str:
        return self.exporter_log.read_text(errors="replace")[-3000:]

    def page_firing(self) -> list[dict[str, Any]]:
        return [
            a for a in self.prometheus.alerts()
            if a["labels"].get("alertname") == "RegistrySLOBurnRatePage"
            and a["labels"].get("sloth_id") == "us-east-pull-availability"
            and a["labels"].get("long_window") == "1h" and a["state"] == "firing"
        ]

    def ensure_outage(self) -> None:
        """Stop us-east (once) and wait for the page, recording how long it took."""
        if self.stopped_at is not None:
            return
        failures = self.prometheus.query(
            'sum by (reason) (registry_slo_probe_failures_total{region="us-east",probe="pull"})'
            " > 0")
        assert not self.page_firing(), (
            "the page fires while every registry is up (one failed pull pages with this "
            f"little history): pull failures by reason {[(s.labels, s.value) for s in failures]}"
        )
        self.us_east.stop(cleanup=False)
        self.stopped_at = time.monotonic()
        deadline = self.stopped_at + self.page_bound + 30
        while time.monotonic() < deadline:
            if self.page_firing():
                self.page_after = time.monotonic() - self.stopped_at
                return
            time.sleep(0.5)

    def ensure_gc(self) -> None:
        """Run the garbage collector (once), as cron appends to the log us-east's
        ``distribution-gc`` source reads: a dry run on us-east's storage once us-east is
        stopped, then a real run on the dedicated registry's garbage; wait until
        Prometheus has the real run (over :data:`SETTLE` seconds after its last line)."""
        if self.gc_at is not None:
            return
        self.ensure_outage()  # us-east stopped: its storage holds still for the dry run
        dry = run_gc(self.us_east.config_path, self.gc_log, "--dry-run", "--delete-untagged")
        assert dry == 0, self.gc_log.read_text(errors="replace")[-2000:]
        self.gc_at = time.time()
        real = run_gc(self.gc_target.config_path, self.gc_log, "--delete-untagged")
        assert real == 0, self.gc_log.read_text(errors="replace")[-2000:]
        try:
            self.prometheus.wait_for(
                'registry_slo_gc_runs_total{region="us-east",result="ok"} >= 1'
                ' and on () registry_slo_gc_reclaimed_bytes{region="us-east"} > -1e18',
                timeout=SETTLE + 60)
        except TimeoutError as exc:
            pytest.fail(f"{exc}\nexporter log:\n{self.exporter_tail()}")


def _page_bound(out: Path) -> float:
    """The detection bound the generated promtool test states for pull-availability."""
    text = (out / "tests" / "slo-pull-availability.test.yml").read_text()
    match = re.search(r"us-east-pull-availability: full outage pages within (\w+)", text)
    assert match, "the generated test no longer states its detection bound"
    return parse_duration(match.group(1))


METERED = {"RateLimit-Policy": '"pulls";q=1000;w=21600', "RateLimit": '"pulls";r=900;t=1800'}
"""What eu-west's answers to the probes carry: it plays a metered registry (F9)."""


def _exporter_config(us: LocalRegistry, eu: LocalRegistry, eu_url: str,
                     cache: LocalRegistry, receiver: OTLPReceiver,
                     port: int, gc_log: Path) -> dict[str, Any]:
    example = yaml.safe_load(EXAMPLE.read_text())
    return {
        "listen": f"127.0.0.1:{port}",
        "log_format": "json",
        "defaults": {"probe": {"interval": PROBE_INTERVAL, "timeout": PROBE_INTERVAL,
                               "blob_size": "16KiB", "repository": "registry-slo/probe"}},
        "regions": [
            {"name": "us-east", "url": us.url, "probe": {"enabled": ["push", "pull", "auth"]}},
            {"name": "eu-west", "url": eu_url, "replicates_from": "us-east",
             "probe": {"enabled": ["pull", "auth"]},
             # The coverage and rollback panels, on the region that stays up (us-east is
             # stopped for the outage): the probe repository (none signed, none gone).
             "coverage": {"repositories": ["registry-slo/probe"], "interval": "10s",
                          "timeout": "10s"},
             "rollback": {"repositories": ["registry-slo/probe"], "protected_tags": ["prod"],
                          "interval": "10s", "timeout": "10s"}},
            {"name": "ap-south-cache", "url": cache.url, "pull_through_cache_of": "us-east",
             "debug_vars_url": f"{cache.debug_url}/debug/vars",
             "probe": {"enabled": ["pull", "auth", "cache"]}},
        ],
        "replication": {"heartbeat_interval": "1s", "timeout": "1s"},
        "ingest": {"logs": [
            {"name": "us-east-log", "region": "us-east", "format": "distribution",
             "paths": [str(us.log_path)], "read_from": "beginning"},
            {"name": "eu-west-log", "region": "eu-west", "format": "distribution",
             "paths": [str(eu.log_path)], "read_from": "beginning"},
            # The garbage collector's output, as examples/regions.yaml reads it.
            {"name": "us-east-gc", "region": "us-east", "format": "distribution-gc",
             "paths": [str(gc_log)], "read_from": "beginning"},
        ], "filesystems": [
            {"name": "us-east-storage", "region": "us-east", "path": str(us.storage_dir)},
        ]},
        "otel": {"traces": True, "endpoint": receiver.endpoint, "protocol": "grpc"},
        # The example's SLOs and alerting, unchanged: the dashboards are then the committed
        # ones (a test below checks that their queries are identical).
        "slos": example["slos"],
        "alerting": example["alerting"],
    }


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    for binary in ("docker-registry", "skopeo", "prometheus"):
        require_binary(binary)
    tmp = tmp_path_factory.mktemp("prometheus-e2e")
    with contextlib.ExitStack() as stack:
        us = stack.enter_context(LocalRegistry(log_path=tmp / "us-east.log"))
        eu = stack.enter_context(LocalRegistry(log_path=tmp / "eu-west.log"))
        cache = stack.enter_context(LocalRegistry(
            proxy_remote_url=us.url, debug_metrics=True, log_path=tmp / "cache.log"))
        receiver = stack.enter_context(OTLPReceiver())
        # A registry whose storage holds known garbage, for a real garbage collection
        # (stopped: the collector wants no writes during its run).
        gc_target = stack.enter_context(LocalRegistry(log_path=tmp / "gc-target.log"))
        garbage = make_garbage(gc_target.url, layer_bytes=1 << 20)
        gc_target.stop(cleanup=False)
        gc_log = tmp / "gc.log"
        # The probes reach eu-west through a proxy adding rate-limit headers.
        metered = stack.enter_context(FaultProxy(eu.url))
        metered.set_mode(FaultMode.HEADERS, headers=METERED)
        port = free_port()
        config = _exporter_config(us, eu, metered.url, cache, receiver, port, gc_log)
        config_path = tmp / "regions.yaml"
        config_path.write_text(yaml.safe_dump(config, sort_keys=False))
        settings = load_config(config_path)
        sync = SkopeoSyncLoop(us, eu, "registry-slo/probe", settings.replication.tag, 1.0)
        sync.start()
        stack.callback(sync.stop)
        # Users on both regions whose logs are read: the traffic SLOs of the example
        # apply to us-east and eu-west.
        for registry in (us, eu):
            traffic = ClientTraffic(registry)
            traffic.start()
            stack.callback(traffic.stop)

        out = tmp / "alerts"
        generate(settings, out)
        log = tmp / "exporter.log"
        env = {**os.environ, "STATE_DIRECTORY": str(tmp / "state")}
        exporter = subprocess.Popen(
            [sys.executable, "-m", "registry_slo", "serve", "--config", str(config_path)],
            stdout=subprocess.DEVNULL, stderr=log.open("wb"), env=env,
        )

        def stop_exporter() -> None:
            exporter.terminate()
            try:
                exporter.wait(timeout=10)
            except subprocess.TimeoutExpired:
                exporter.kill()
                exporter.wait()

        stack.callback(stop_exporter)
        prometheus = stack.enter_context(LocalPrometheus(
            scrape_configs=[scrape_job("registry-slo", [f"127.0.0.1:{port}"])],
            rule_files=sorted((out / "rules").glob("*.yml")),
            scrape_interval=SCRAPE_INTERVAL,
            evaluation_interval=EVALUATION_INTERVAL,
            feature_flags=["exemplar-storage"],
        ))
        yield Stack(settings, prometheus, us, receiver, exporter, log, out,
                    _page_bound(out), gc_log, gc_target, garbage)


def _warm(stack: Stack) -> None:
    """Wait until the exporter is scraped and every SLO's 5m SLI has a value."""
    prom = stack.prometheus
    try:
        prom.wait_for_targets(timeout=WARM_UP_TIMEOUT)
        targets = stack.settings.slo_targets()
        prom.wait_for(
            "slo:sli_error:ratio_rate5m", timeout=WARM_UP_TIMEOUT,
            until=lambda result: {s.labels["sloth_id"] for s in result}
            >= {t.sloth_id for t in targets},
        )
    except TimeoutError as exc:
        pytest.fail(f"{exc}\nexporter log:\n{stack.exporter_tail()}")


def test_recorded_slo_series_exist_and_stopping_a_registry_pages(stack: Stack) -> None:
    _warm(stack)
    prom = stack.prometheus
    missing = []
    for target in stack.settings.slo_targets():
        for name in (*RECORDINGS, f"slo:sli_error:ratio_rate{period_name(target)}"):
            found = prom.query(f'{name}{{sloth_id="{target.sloth_id}"}}')
            labels = found[0].labels if found else {}
            if not found or labels.get("sloth_slo") != target.slo.name \
                    or labels.get("region") != target.region:
                missing.append(f"{name} {target.sloth_id}")
    assert not missing, missing
    # The rule groups evaluate without errors.
    broken = [(g["name"], r.get("name"), r.get("lastError"))
              for g in prom.rule_groups() for r in g["rules"] if r.get("health") == "err"]
    assert not broken, broken
    slowest = max(prom.rule_groups(), key=lambda g: g["evaluationTime"])
    print(f"\nslowest rule group: {slowest['name']} {slowest['evaluationTime'] * 1000:.1f}ms "
          f"(evaluated every {EVALUATION_INTERVAL:g}s)")

    stack.ensure_outage()
    assert stack.page_after is not None, (
        f"RegistrySLOBurnRatePage did not fire within {stack.page_bound + 30:g}s of stopping "
        f"us-east; alerts: {prom.alerts()}"
    )
    print(f"\npage fired {stack.page_after:.1f}s after us-east stopped "
          f"(bound from the generated promtool test: {stack.page_bound:g}s)")
    assert stack.page_after <= stack.page_bound
    page = stack.page_firing()[0]["labels"]
    assert page["severity"] == "page" and page["short_window"] == "5m"


def _substitute(expr: str, regions: list[str], slos: list[str]) -> str:
    values = {**SUBSTITUTIONS, "region": "|".join(regions), "slo": "|".join(slos)}

    def replace(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        assert name in values, f"unknown variable ${name} in {expr}"
        return values[name]

    return re.sub(r"\$\{(\w+)\}|\$(\w+)", replace, expr)


def _has_series(prom: LocalPrometheus, target: dict[str, Any], expr: str) -> bool:
    if target.get("instant"):
        return bool(prom.query(expr))
    now = time.time()
    return bool(prom.query_range(expr, now - 120, now, 5))


def test_garbage_collection_runs_are_read(stack: Stack) -> None:
    """What Prometheus has of the two runs: the real one's deletions are the garbage the
    dedicated registry held, its reclaimed bytes were measured (the filesystem holding
    us-east's storage: /tmp, which others write too, so only that it was), and the
    overdue alert is quiet."""
    _warm(stack)
    stack.ensure_gc()
    prom = stack.prometheus

    def value(expr: str) -> float:
        (found,) = prom.query(expr)
        return found.value

    us = '{region="us-east",source="us-east-gc"}'
    assert value(f"registry_slo_gc_blobs_deleted_total{us}") == \
        len(stack.garbage.eligible_untagged)
    assert value(f"registry_slo_gc_manifests_deleted_total{us}") == \
        len(stack.garbage.untagged_manifests)
    assert value('registry_slo_gc_runs_total{region="us-east",result="ok"}') >= 1
    assert value(f'sum(registry_slo_gc_runs_total{us})') == 2  # the dry run, the real one
    assert value(f"registry_slo_gc_blobs_marked{us}") == len(stack.garbage.marked_untagged)
    assert value(f"registry_slo_gc_last_success_timestamp_seconds{us}") >= stack.gc_at
    assert not math.isnan(value(f"registry_slo_gc_reclaimed_bytes{us}"))  # measured
    assert not [a for a in prom.alerts()
                if a["labels"].get("alertname") == "RegistryGarbageCollectionOverdue"]


def test_every_panel_query_returns_series(stack: Stack) -> None:
    _warm(stack)
    stack.ensure_outage()
    stack.ensure_gc()
    prom = stack.prometheus
    regions = [r.name for r in stack.settings.regions]
    slos = [s.name for s in stack.settings.slos]
    # The variables' own queries.
    assert sorted(prom.label_values("region", ["registry_slo_probes_configured"])) \
        == sorted(regions)
    slo_var = _substitute('slo:info{region=~"$region"}', regions, slos)
    assert sorted(prom.label_values("sloth_slo", [slo_var])) == sorted(slos)

    files = dashboards_module.render(stack.settings)
    docs = {name: json.loads(text) for name, text in files.items() if name.endswith(".json")}
    pending: list[tuple[str, str, dict[str, Any], str]] = []
    errors: list[str] = []
    evaluated = 0
    for name, doc in docs.items():
        for panel, target in iter_targets(doc):
            where = f"{name} panel {panel['id']} {panel['title']!r} query {target['refId']}"
            expr = _substitute(target["expr"], regions, slos)
            evaluated += 1
            try:
                if not _has_series(prom, target, expr):
                    pending.append((where, expr, target, ""))
            except PrometheusQueryError as exc:
                errors.append(f"{where}: {exc}")
    assert not errors, "\n".join(errors)
    print(f"\n{evaluated} queries evaluated, {len(pending)} polled until they had series")
    deadline = time.monotonic() + PANEL_DEADLINE
    while pending and time.monotonic() < deadline:
        time.sleep(2)
        pending = [p for p in pending if not _has_series(prom, p[2], p[1])]
    assert not pending, "panels without series:\n" + "\n".join(
        f"{where}: {expr}" for where, expr, _, _ in pending)
    assert evaluated >= 60, evaluated

    # Latency panels ask for exemplars; Prometheus has them, and they are our traces.
    received = {span.trace_id for span in stack.receiver.spans}
    now = time.time()
    exemplar_queries = [(f"{name} {panel['title']!r}", _substitute(t["expr"], regions, slos))
                        for name, doc in docs.items() for panel, t in iter_targets(doc)
                        if t.get("exemplar")]
    assert len(exemplar_queries) >= 6
    for where, expr in exemplar_queries:
        found = prom.query_exemplars(expr, now - 300, now)
        trace_ids = {e["labels"].get("trace_id") for s in found for e in s["exemplars"]}
        assert trace_ids - {None}, f"{where}: no exemplars for {expr}"
        assert trace_ids & received, f"{where}: exemplar trace ids unknown to the collector"


def test_the_evaluated_queries_are_the_committed_dashboards(stack: Stack) -> None:
    """The e2e configuration has the example's SLOs and region names, so the queries it
    evaluated are exactly those of the committed dashboards/ (only thresholds that
    depend on probe intervals may differ)."""
    fresh = dashboards_module.render(stack.settings)
    for name, text in fresh.items():
        if not name.endswith(".json"):
            continue
        committed = json.loads((COMMITTED_DASHBOARDS / name).read_text())
        ours = json.loads(text)
        assert [t["expr"] for _, t in iter_targets(ours)] == \
            [t["expr"] for _, t in iter_targets(committed)], name
