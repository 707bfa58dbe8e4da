"""Scale-out as docs/scaling.md describes it, on real servers: one exporter per region,
a Prometheus per region scraping it, one global Prometheus receiving every region by
remote write and evaluating the generated rules.

- two real ``docker-registry`` (us-east, and eu-west replicated from it by a ``skopeo
  sync`` loop), each probed by its own ``registry-slo serve --region`` process;
- us-east is scraped by an HA pair of Prometheus servers (external labels
  ``cluster=us-east`` and ``prometheus_replica=a|b``), eu-west by one; each loads its
  region's groups of the generated rules and remote-writes the exporter's raw
  ``registry_slo_*`` series (not its recorded ``slo:*`` series) to
- a global Prometheus (``--web.enable-remote-write-receiver``) with every generated rule.

Then: the heartbeat region A's exporter writes is read by region B's exporter (another
process) and the lag is visible globally; stopping us-east's registry fires us-east's
page in the global Prometheus and nothing for eu-west; and at one instant the global SLI
error ratios (5m and the period's, hence burn rate and budget) equal those computed from
the union of the regional servers' data: the HA pair's duplicates do not skew them.
"""

from __future__ import annotations

import contextlib
import os
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from conftest import require_binary
from harness.prometheus import LocalPrometheus, scrape_job
from harness.serve import ServeProcess

from registry_slo._units import parse_duration
from registry_slo.config import Settings, load_config
from registry_slo.devenv import LocalRegistry, free_port
from registry_slo.devenv.mirror import SkopeoSyncLoop
from registry_slo.generate import generate, rule_groups
from registry_slo.generate.indicators import EventRatio, indicator
from registry_slo.generate.rules import error_ratio_expr

SCRAPE, EVALUATION = 1.0, 2.0
REPLICA_LABEL = "prometheus_replica"
HEALTHY, OUTAGE = 20.0, 10.0
"""Seconds of healthy data before us-east's registry stops; of the outage, at least,
before the instant at which global and regional figures are compared."""
KEEP_RAW = [{"source_labels": ["__name__"], "regex": "registry_slo_.*", "action": "keep"}]
"""What a regional Prometheus forwards: the exporter's series, not its own ``slo:*``
recordings (the global server records those itself; forwarded ones would be duplicates)."""


def _config(us: LocalRegistry, eu: LocalRegistry) -> dict[str, Any]:
    return {
        "listen": "127.0.0.1:9731",  # each exporter's REGISTRY_SLO_LISTEN overrides it
        "log_format": "json",
        "defaults": {"probe": {"interval": "2s", "timeout": "2s", "blob_size": "16KiB"}},
        "regions": [
            {"name": "us-east", "url": us.url, "probe": {"enabled": ["push", "pull", "auth"]}},
            {"name": "eu-west", "url": eu.url, "replicates_from": "us-east",
             "probe": {"enabled": ["pull", "auth"]}},
        ],
        "replication": {"heartbeat_interval": "1s", "timeout": "1s"},
        "slos": [
            {"name": "pull-availability", "objective": 99,
             "sli": {"kind": "probe_success", "probe": "pull"}},
            # Far above the test's span: stopping us-east stops the heartbeats too.
            {"name": "replication-freshness", "objective": 99,
             "sli": {"kind": "replication_lag", "threshold": "10m"}},
        ],
        "alerting": {"replication_lag_threshold": "15m"},
        "prometheus": {"scrape_interval": f"{SCRAPE:g}s",
                       "evaluation_interval": f"{EVALUATION:g}s"},
    }


@dataclass
class World:
    settings: Settings
    us: LocalRegistry
    eu: LocalRegistry
    exporters: dict[str, ServeProcess]
    regional: dict[str, list[LocalPrometheus]]
    central: LocalPrometheus
    page_bound: float

    def logs(self) -> str:
        return "\n".join(f"--- {name}\n{e.tail()}" for name, e in self.exporters.items())


def _page_bound(out: Path) -> float:
    text = (out / "tests" / "slo-pull-availability.test.yml").read_text()
    match = re.search(r"us-east-pull-availability: full outage pages within (\w+)", text)
    assert match, "the generated test no longer states its detection bound"
    return parse_duration(match.group(1))


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    for binary in ("docker-registry", "skopeo", "prometheus"):
        require_binary(binary)
    tmp = tmp_path_factory.mktemp("scale-out")
    with contextlib.ExitStack() as stack:
        us = stack.enter_context(LocalRegistry(log_path=tmp / "us-east-registry.log"))
        eu = stack.enter_context(LocalRegistry(log_path=tmp / "eu-west-registry.log"))
        config = tmp / "regions.yaml"
        config.write_text(yaml.safe_dump(_config(us, eu), sort_keys=False))
        settings = load_config(config)
        sync = SkopeoSyncLoop(us, eu, "registry-slo/probe", settings.replication.tag, 1.0)
        sync.start()
        stack.callback(sync.stop)

        out = tmp / "alerts"
        generate(settings, out)
        central = stack.enter_context(LocalPrometheus(
            rule_files=sorted((out / "rules").glob("*.yml")),
            scrape_interval=SCRAPE, evaluation_interval=EVALUATION,
            extra_args=["--web.enable-remote-write-receiver"],
            # An HA pair's alerts differ only by the replica label: dropped, Alertmanager
            # sees one alert (docs/scaling.md).
            extra_config={"alerting": {"alert_relabel_configs": [
                {"action": "labeldrop", "regex": REPLICA_LABEL}]}},
        ))

        exporters: dict[str, ServeProcess] = {}
        regional: dict[str, list[LocalPrometheus]] = {}
        groups = rule_groups(settings)
        for region, replicas in (("us-east", ("a", "b")), ("eu-west", (None,))):
            port = free_port()
            env = {**os.environ, "REGISTRY_SLO_LISTEN": f"127.0.0.1:{port}",
                   "REGISTRY_SLO_STATE_DIR": str(tmp / f"state-{region}"),
                   "REGISTRY_SLO_REPLICATION__WRITER": f"exporter-{region}"}
            exporter = ServeProcess(config, tmp / f"exporter-{region}.log", env=env,
                                    args=[f"--region={region}"])
            stack.callback(exporter.stop)
            exporters[region] = exporter
            rules = tmp / f"rules-{region}.yml"
            rules.write_text(yaml.safe_dump({"groups": [
                group for file in groups.values() for name, group in file if name == region]}))
            regional[region] = []
            for replica in replicas:
                labels = {"cluster": region}
                if replica is not None:
                    labels[REPLICA_LABEL] = replica
                regional[region].append(stack.enter_context(LocalPrometheus(
                    scrape_configs=[scrape_job("registry-slo", [f"127.0.0.1:{port}"])],
                    rule_files=[rules], scrape_interval=SCRAPE,
                    evaluation_interval=EVALUATION, external_labels=labels,
                    extra_config={"remote_write": [{
                        "url": f"{central.url}/api/v1/write",
                        "write_relabel_configs": KEEP_RAW,
                        "queue_config": {"batch_send_deadline": "1s"},
                    }]},
                )))
        yield World(settings, us, eu, exporters, regional, central, _page_bound(out))


def _firing(prometheus: LocalPrometheus) -> set[tuple[str, str]]:
    return {(a["labels"]["alertname"], a["labels"].get("region", ""))
            for a in prometheus.alerts() if a["state"] == "firing"}


def _value(prometheus: LocalPrometheus, expr: str, at: float) -> float | None:
    result = prometheus.query(expr, at=at)
    assert len(result) <= 1, (expr, result)
    return result[0].value if result else None


def _union_ratio(world: World, region: str, window: str, at: float) -> float | None:
    """The SLI's error ratio from every regional server's own data, summed as one set."""
    (target,) = [t for t in world.settings.slo_targets()
                 if t.region == region and t.slo.name == "pull-availability"]
    found = indicator(target)
    assert isinstance(found, EventRatio) and found.le is None
    bad = total = 0.0
    for prometheus in world.regional[region]:
        bad += _value(prometheus, f"sum(rate({found.counted}[{window}]))", at) or 0.0
        total += _value(prometheus, f"sum(rate({found.total}[{window}]))", at) or 0.0
    return bad / total if total > 0 else None


def test_scale_out_over_remote_write(world: World) -> None:
    central = world.central
    try:
        # Every region's raw series and recorded SLIs reach the global server.
        central.wait_for(
            "slo:sli_error:ratio_rate5m", timeout=90,
            until=lambda r: {s.labels["sloth_id"] for s in r}
            >= {t.sloth_id for t in world.settings.slo_targets()})
        lag = central.wait_for(
            'registry_slo_replication_lag_seconds{region="eu-west"}', timeout=60,
            until=lambda r: bool(r) and all(s.value < 15 for s in r))
    except TimeoutError as exc:
        pytest.fail(f"{exc}\n{world.logs()}")
    # From eu-west's exporter alone (one regional server): region A's heartbeat was
    # written by A's exporter and read by B's, another process.
    assert {s.labels["cluster"] for s in lag} == {"eu-west"}
    manifest = httpx.get(
        f"{world.eu.url}/v2/registry-slo/probe/manifests/{world.settings.replication.tag}",
        headers={"Accept": "application/vnd.oci.image.manifest.v1+json"}, timeout=5).json()
    assert manifest["annotations"]["dev.registry-slo.heartbeat.writer"] == "exporter-us-east"
    kinds = {region: {s.labels["probe"] for s in central.query(
        f'registry_slo_probes_configured{{region="{region}"}}')} for region in world.exporters}
    assert kinds == {"us-east": {"push", "pull", "auth", "heartbeat"},
                     "eu-west": {"pull", "auth", "replication"}}, kinds
    # Healthy data for a while: the figures compared below span the outage's start.
    time.sleep(HEALTHY)
    assert not _firing(central), _firing(central)

    # Stopping us-east's registry pages for us-east, globally, and for nobody else.
    world.us.stop()
    stopped = time.monotonic()
    deadline = stopped + world.page_bound + 30
    while time.monotonic() < deadline:
        if ("RegistrySLOBurnRatePage", "us-east") in _firing(central):
            break
        time.sleep(1.0)
    firing = _firing(central)
    assert ("RegistrySLOBurnRatePage", "us-east") in firing, (firing, world.logs())
    assert not {a for a in firing if a[1] != "us-east"}, firing
    pages = [a for a in central.alerts() if a["state"] == "firing"
             and a["labels"]["alertname"] == "RegistrySLOBurnRatePage"]
    assert len(pages) == 1 and REPLICA_LABEL not in pages[0]["labels"], pages

    # One instant, seconds in the past so every remote write has landed: the global
    # figures are the union's.
    time.sleep(OUTAGE)
    at = time.time() - 5
    time.sleep(5)
    period = f"{int(world.settings.slos[0].period_seconds)}s"
    for region in ("us-east", "eu-west"):
        (target,) = [t for t in world.settings.slo_targets()
                     if t.region == region and t.slo.name == "pull-availability"]
        for window, seconds in (("5m", 300), (period, int(target.slo.period_seconds))):
            union = _union_ratio(world, region, window, at)
            central_ratio = _value(central, error_ratio_expr(target, seconds, EVALUATION), at)
            assert union is not None and central_ratio is not None, (region, window)
            assert central_ratio == pytest.approx(union, rel=1e-9, abs=1e-12), (region, window)
            if region == "us-east" and window == "5m":
                assert union > 0.1, "the outage is in the figures compared"
            if region == "eu-west":
                assert union == 0.0
    # The recorded budget follows: remaining = 1 - period ratio / (1 - objective).
    (target,) = [t for t in world.settings.slo_targets()
                 if t.region == "us-east" and t.slo.name == "pull-availability"]
    remaining = central.query(
        f'slo:period_error_budget_remaining:ratio{{sloth_id="{target.sloth_id}"}}')
    assert len(remaining) == 1 and remaining[0].value < 1.0, remaining
