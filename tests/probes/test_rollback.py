"""Rollback readiness (M16): the digests deployments could roll back to, remembered from
what ingest sees and checked against a real registry that loses one."""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx
import pytest
import yaml
from conftest import require_binary
from harness import push_image
from harness.serve import ServeProcess
from prometheus_client.parser import text_string_to_metric_families

from registry_slo.config import RollbackConfig
from registry_slo.devenv import LocalRegistry, free_port
from registry_slo.observation import Observation
from registry_slo.probes import RollbackTargets

T0 = 1_764_000_000.0
A, B, C, D = ("sha256:" + c * 64 for c in "abcd")


def _event(operation: str, digest: str, tag: str | None = None, repository: str = "team/app",
           at: float = T0, region: str = "east", success: bool = True) -> Observation:
    return Observation(region=region, operation=operation, source="hooks", success=success,
                       reason=None, duration_seconds=0.0, time=at, repository=repository,
                       digest=digest, tag=tag, timed=False)


def _targets(path: Path | None, now: list[float], **config: object) -> RollbackTargets:
    settings = RollbackConfig.model_validate(
        {"repositories": ["team/app"], "protected_tags": ["prod"], **config})
    return RollbackTargets("east", settings, path, clock=lambda: now[0])


def test_what_is_remembered(tmp_path: Path) -> None:
    now = [T0]
    memory = _targets(tmp_path / "rollback.json", now, keep=2)
    memory.record(_event("push_manifest", A, "prod"))
    memory.record(_event("push_manifest", A, "prod", at=T0 + 1))  # the same digest again
    memory.record(_event("push_manifest", B, "prod", at=T0 + 2))  # prod moved: A is its target
    memory.record(_event("push_manifest", D, "dev", at=T0 + 3))  # not a protected tag
    memory.record(_event("pull_manifest", C, at=T0 + 4))  # pulled by digest
    memory.record(_event("pull_manifest", D, "dev", at=T0 + 5))  # pulled by tag: not a target
    memory.record(_event("pull_manifest", D, repository="other/app", at=T0 + 6))
    memory.record(_event("pull_manifest", D, region="west", at=T0 + 7))
    memory.record(_event("pull_manifest", D, success=False, at=T0 + 8))
    newest, previous = memory.targets()
    assert newest == {"team/app": [C, B]}  # keep=2: the two seen last
    assert previous == [("team/app", "prod", A)]  # checked whatever keep says
    # A restart remembers it all (the file), and forgets what the window left behind.
    again = _targets(tmp_path / "rollback.json", now, keep=2)
    assert again.targets() == (newest, previous)
    now[0] = T0 + 30 * 86400 + 3
    assert again.targets() == ({"team/app": [C]}, previous)


def test_an_unreadable_memory_starts_empty(tmp_path: Path) -> None:
    path = tmp_path / "rollback.json"
    path.write_text("{not json")
    memory = _targets(path, [T0])
    assert memory.targets() == ({}, [])
    memory.record(_event("pull_manifest", C))
    assert json.loads(path.read_text())["seen"] == [["team/app", C, T0]]


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {(s.name, tuple(sorted((k, v) for k, v in s.labels.items() if k != "region"))):
            s.value for f in text_string_to_metric_families(text) for s in f.samples
            if s.name.startswith("registry_slo_rollback_")}


def _wait(serve: ServeProcess, expected: dict[tuple[str, tuple[tuple[str, str], ...]], float],
          deadline: float = 60) -> None:
    end = time.monotonic() + deadline
    while True:
        found = _samples(serve.get("/metrics").text)
        if found == expected:
            return
        if time.monotonic() > end:
            pytest.fail(f"rollback series {found} != {expected}\n{serve.tail()}")
        time.sleep(0.3)


def test_a_deleted_previous_release_is_reported(tmp_path: Path) -> None:
    """prod is pushed twice (its first digest becomes its rollback target) and an image is
    pulled by digest; the registry tells the exporter by webhook. Deleting prod's first
    digest makes it missing, and a restart still knows it."""
    require_binary("docker-registry")
    hooks = free_port()
    notifications = {"endpoints": [{
        "name": "exporter", "url": f"http://127.0.0.1:{hooks}/notifications/hooks",
        "timeout": "1s", "threshold": 1, "backoff": "200ms"}]}
    with LocalRegistry(extra_config={"notifications": notifications}) as registry:
        config = tmp_path / "regions.yaml"
        config.write_text(yaml.safe_dump({
            "listen": f"127.0.0.1:{free_port()}",
            "state_dir": str(tmp_path / "state"),
            "regions": [{"name": "east", "url": registry.url,
                         "probe": {"enabled": ["auth"], "interval": "1m"},
                         "rollback": {"repositories": ["team/app"], "protected_tags": ["prod"],
                                      "interval": "1s", "timeout": "1s", "window": "1d"}}],
            "ingest": {"notifications": {
                "listen": f"127.0.0.1:{hooks}",
                "endpoints": [{"name": "hooks", "region": "east", "format": "distribution"}]}},
        }))
        log = tmp_path / "exporter.log"
        serve = ServeProcess(config, log)
        try:
            with httpx.Client(trust_env=False, timeout=10) as client:
                first = push_image(client, registry.url, "team/app", "prod", layer=b"release 1")
                second = push_image(client, registry.url, "team/app", "prod", layer=b"release 2")
                pinned = push_image(client, registry.url, "team/app", "pinned", layer=b"pinned")
                client.get(f"{registry.url}/v2/team/app/manifests/{pinned.manifest_digest}",
                           headers={"Accept": "application/vnd.oci.image.manifest.v1+json"}
                           ).raise_for_status()
            app = (("repository", "team/app"),)
            prod = (("repository", "team/app"), ("tag", "prod"))
            _wait(serve, {("registry_slo_rollback_targets", app): 3,
                          ("registry_slo_rollback_targets_missing", app): 0,
                          ("registry_slo_rollback_previous_missing", prod): 0})
            assert first.manifest_digest != second.manifest_digest
            # Someone deletes the previous release (a retention job, GC of untagged).
            httpx.delete(f"{registry.url}/v2/team/app/manifests/{first.manifest_digest}",
                         ).raise_for_status()
            gone = {("registry_slo_rollback_targets", app): 3,
                    ("registry_slo_rollback_targets_missing", app): 1,
                    ("registry_slo_rollback_previous_missing", prod): 1}
            _wait(serve, gone)
        finally:
            serve.stop()
        # The memory survives a restart: nothing new arrives, the same is reported.
        serve = ServeProcess(config, log)
        try:
            _wait(serve, gone)
        finally:
            serve.stop()
