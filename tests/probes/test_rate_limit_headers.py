"""Rate-limit headroom (guide F9) read from a real registry's answers, with the fault
proxy adding the headers a metered registry sends; and the pull probe by ``HEAD`` only."""

from __future__ import annotations

import time
from pathlib import Path

import yaml
from conftest import FaultProxyFactory
from harness import FaultMode
from harness.serve import ServeProcess
from prometheus_client.parser import text_string_to_metric_families

from registry_slo.devenv import LocalRegistry, free_port
from registry_slo.oci import Reason
from registry_slo.probes import PullProbe, execute

from .conftest import region

DOCKER_HUB = {"ratelimit-limit": "100;w=21600", "ratelimit-remaining": "76;w=21600"}


async def test_head_only_pulls_send_nothing_but_head(
    registry: LocalRegistry, fault_proxy: FaultProxyFactory
) -> None:
    proxy = fault_proxy(registry)
    proxy.set_mode(FaultMode.HEADERS, headers=DOCKER_HUB)
    state = region(proxy.url, pull_method="head")
    try:
        probe = PullProbe(state)
        await probe.prepare()  # seeds the canary (a HEAD, then a push the first time)
        before = len(proxy.seen)
        result = await execute(probe, 5)
        assert result.success, result.detail
        run = proxy.seen[before:]
        assert {method for method, _ in run} == {"HEAD"}, run
        assert sum("/manifests/" in target for _, target in run) == 2  # by tag, by digest
        assert sum("/blobs/" in target for _, target in run) == 2  # config and layer
        # The answers' quota is read as it is on any answer.
        (quota,) = state.client.rate_limits.current()
        assert (quota.policy, quota.limit, quota.remaining, quota.window) == (
            "default", 100, 76, 21600)
        # A missing canary (deleted with its tag) is a failed pull, as with GET.
        proxy.passthrough()
        assert state.canary_digest is not None
        await state.client.delete_manifest(state.repository, state.canary_digest)
        result = await execute(PullProbe(state), 5)
        assert result.reason is Reason.NOT_FOUND, result.detail
    finally:
        await state.aclose()


async def test_unreadable_headers_never_fail_a_probe(
    registry: LocalRegistry, fault_proxy: FaultProxyFactory
) -> None:
    proxy = fault_proxy(registry)
    proxy.set_mode(FaultMode.HEADERS, headers={
        "ratelimit-limit": "100;w=21600", "ratelimit-remaining": "plenty",
        "RateLimit-Policy": '"hourly";q=5000;w=3600', "RateLimit": '"hourly";r=;t=x'})
    state = region(proxy.url)
    try:
        result = await execute(PullProbe(state), 5)
        assert result.success, result.detail
        limits = state.client.rate_limits
        counts = limits.malformed_counts()
        assert set(counts) == {"ratelimit-remaining", "ratelimit"}
        assert all(n >= 4 for n in counts.values())  # every answer of the pull counted
        quotas = {q.policy: q for q in limits.current()}
        assert quotas["default"].limit == 100 and quotas["default"].remaining is None
        assert quotas["hourly"].limit == 5000 and quotas["hourly"].remaining is None
    finally:
        await state.aclose()


def _samples(text: str, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    return {tuple(sorted(s.labels.items())): s.value
            for family in text_string_to_metric_families(text)
            for s in family.samples if s.name == name}


def test_the_exporter_serves_headroom_and_a_429(
    tmp_path: Path, registry: LocalRegistry, fault_proxy: FaultProxyFactory
) -> None:
    proxy = fault_proxy(registry)
    proxy.set_mode(FaultMode.HEADERS, headers={
        "RateLimit-Policy": '"burst";q=300;w=60, "daily";q=20000;w=86400',
        "RateLimit": '"burst";r=290;t=42, "daily";r=19000;t=50000',
        "ratelimit-remaining": "many"})
    port = free_port()
    config = tmp_path / "regions.yaml"
    config.write_text(yaml.safe_dump({
        "listen": f"127.0.0.1:{port}",
        "regions": [{"name": "hub", "url": proxy.url,
                     "probe": {"interval": "2s", "timeout": "2s", "enabled": ["pull"],
                               "pull_method": "head", "blob_size": "16KiB"}}],
    }))
    exporter = ServeProcess(config, tmp_path / "exporter.log")
    try:
        def scrape(name: str) -> dict[tuple[tuple[str, str], ...], float]:
            return _samples(exporter.get("/metrics").text, name)

        deadline = time.monotonic() + 30
        while not scrape("registry_slo_rate_limit_remaining"):
            assert time.monotonic() < deadline, exporter.tail()
            time.sleep(0.3)
        hub = (("policy", "burst"), ("region", "hub"))
        daily = (("policy", "daily"), ("region", "hub"))
        assert scrape("registry_slo_rate_limit_remaining") == {hub: 290, daily: 19000}
        assert scrape("registry_slo_rate_limit_limit") == {hub: 300, daily: 20000}
        assert scrape("registry_slo_rate_limit_window_seconds") == {hub: 60, daily: 86400}
        reset = scrape("registry_slo_rate_limit_reset_seconds")
        assert 0 < reset[hub] <= 42 and 49_000 < reset[daily] <= 50_000
        errors = scrape("registry_slo_rate_limit_header_errors_total")
        assert errors[(("header", "ratelimit-remaining"), ("region", "hub"))] >= 1
        # The registry starts answering 429 with Retry-After: a quota is spent. The 429
        # names no policy: it shows as "default", beside what the earlier answers said.
        proxy.set_mode(FaultMode.STATUS, status=429, retry_after=600, path="/manifests/")
        spent = (("policy", "default"), ("region", "hub"))
        deadline = time.monotonic() + 30
        while scrape("registry_slo_rate_limit_remaining").get(spent) != 0:
            assert time.monotonic() < deadline, exporter.tail()
            time.sleep(0.3)
        assert 590 < scrape("registry_slo_rate_limit_reset_seconds")[spent] <= 600
        assert scrape("registry_slo_rate_limit_remaining")[hub] == 290
        # The probe's failure is counted once its run ends (just after the answer).
        limited = (("probe", "pull"), ("reason", "rate_limited"), ("region", "hub"))
        while not scrape("registry_slo_probe_failures_total").get(limited):
            assert time.monotonic() < deadline, exporter.tail()
            time.sleep(0.3)
    finally:
        exporter.stop()
