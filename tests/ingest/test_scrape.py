"""Registries' own metrics endpoints, normalised into the project's metrics."""

from __future__ import annotations

import httpx
import pytest

from registry_slo.config import ScrapeSourceConfig
from registry_slo.devenv import LocalRegistry
from registry_slo.ingest.scrape import ScrapeSource, operation_of, parse
from registry_slo.telemetry.metrics import ExporterMetrics

# zot's names and labels as its extensions/monitoring code registers them
# (zot_http_requests_total{code,method}, zot_repo_storage_bytes{repo}).
ZOT = """\
# TYPE zot_http_requests_total counter
zot_http_requests_total{code="200",method="GET"} 40
zot_http_requests_total{code="404",method="HEAD"} 3
zot_http_requests_total{code="500",method="GET"} 1
# TYPE zot_repo_storage_bytes gauge
zot_repo_storage_bytes{repo="alpine"} 3.5e+06
zot_repo_storage_bytes{repo="app/web"} 1.5e+06
"""

# Harbor's exporter component (Harbor docs, "Access Metrics"): quota usage and quota per
# project; -1 is "no quota".
HARBOR = """\
# TYPE harbor_project_quota_usage_byte gauge
harbor_project_quota_usage_byte{project_name="library"} 2e+09
harbor_project_quota_usage_byte{project_name="team"} 1e+09
# TYPE harbor_project_quota_byte gauge
harbor_project_quota_byte{project_name="library"} 1e+10
harbor_project_quota_byte{project_name="team"} -1
"""


def value(metrics: ExporterMetrics, name: str, **labels: str) -> float:
    return metrics.registry.get_sample_value(name, labels) or 0.0


@pytest.mark.parametrize(
    ("handler", "method", "operation"),
    [("base", "get", "auth"), ("manifest", "head", "pull_manifest"),
     ("manifest", "put", "push_manifest"), ("blob", "get", "pull_blob"),
     ("blob", "head", "check_blob"), ("blob_upload_chunk", "put", "push_blob"),
     ("blob_upload", "post", "push_blob"), ("tags", "get", "tags_list"),
     ("catalog", "get", "catalog"), ("blob", "delete", "delete"), ("weird", "get", "other")],
)
def test_distribution_handlers(handler: str, method: str, operation: str) -> None:
    assert operation_of(handler, method) == operation


def test_zot_and_harbor_shapes() -> None:
    zot = parse("zot", ZOT)
    assert dict(zot.requests) == {("other", "200"): 40, ("other", "404"): 3,
                                  ("other", "500"): 1}
    assert zot.storage_used == 5e6
    harbor = parse("harbor", HARBOR)
    assert harbor.storage_used == 3e9 and harbor.storage_capacity == 1e10


def test_malformed_exposition_is_counted_not_raised() -> None:
    with pytest.raises(ValueError):
        parse("distribution", "registry_http_requests_total{code=\"200\" 3\n")


async def test_counts_agree_with_traffic_and_survive_restart() -> None:
    with LocalRegistry(debug_metrics=True) as registry:
        metrics = ExporterMetrics()
        source = ScrapeSource(
            ScrapeSourceConfig(name="r-metrics", region="r", url=f"{registry.debug_url}/metrics",
                               format="distribution", interval=1, timeout=1),
            metrics.ingest,
        )
        async with httpx.AsyncClient() as client, httpx.AsyncClient() as traffic:
            await traffic.get(f"{registry.url}/v2/")  # before the baseline: not counted
            await source.read_once(client)
            for _ in range(3):
                await traffic.get(f"{registry.url}/v2/")
            for _ in range(2):
                await traffic.get(f"{registry.url}/v2/nothing/manifests/latest")
            await source.read_once(client)

            def requests(operation: str, code: str) -> float:
                return value(metrics, "registry_slo_registry_requests_total", region="r",
                             source="r-metrics", operation=operation, code=code)

            assert requests("auth", "200") == 3
            assert requests("pull_manifest", "404") == 2
            assert value(metrics, "registry_slo_registry_request_failures_total", region="r",
                         source="r-metrics", operation="pull_manifest", reason="not_found") == 2
            # The latency histogram is the registry's own, cumulative since it started
            # (its readiness checks and the pre-baseline request included).
            own = parse("distribution", (await client.get(f"{registry.debug_url}/metrics")).text)
            assert value(metrics, "registry_slo_registry_reported_request_duration_seconds_count",
                         region="r", source="r-metrics", operation="auth") == own.latency[
                             "auth"][float("inf")] >= 4
            assert value(metrics, "registry_slo_registry_bytes_total", region="r",
                         source="r-metrics", operation="auth", direction="egress") > 0

            registry.restart()  # the registry's counters start again from zero
            await traffic.get(f"{registry.url}/v2/")
            await source.read_once(client)
            since_restart = parse(
                "distribution", (await client.get(f"{registry.debug_url}/metrics")).text
            ).requests[("auth", "200")]
            assert since_restart >= 1  # its readiness check and our request
            assert requests("auth", "200") == 3 + since_restart

            registry.stop(cleanup=False)
            await source.read_once(client)
    assert value(metrics, "registry_slo_ingest_scrapes_total", source="r-metrics",
                 outcome="unreachable") == 1
    assert value(metrics, "registry_slo_ingest_scrapes_total", source="r-metrics",
                 outcome="ok") == 3
    assert requests("auth", "200") == 3 + since_restart
