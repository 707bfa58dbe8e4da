"""rules/kubelet.yml (the ``kubernetes:`` section): generated only when asked for, proven
by its own promtool tests for several configurations, and bad sections refused."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
from conftest import require_binary
from pydantic import ValidationError

from registry_slo.config import Settings
from registry_slo.generate import render

BASE: dict[str, Any] = {"regions": [{"name": "east", "url": "http://127.0.0.1:1"}]}


def _files(kubernetes: dict[str, Any] | None, prometheus: dict[str, str] | None = None
           ) -> dict[str, str]:
    config = {**BASE, **({"kubernetes": kubernetes} if kubernetes is not None else {}),
              **({"prometheus": prometheus} if prometheus else {})}
    return render(Settings.model_validate(config))


def test_only_with_a_kubernetes_section() -> None:
    assert not {"rules/kubelet.yml", "tests/kubelet.test.yml"} & set(_files(None))
    assert {"rules/kubelet.yml", "tests/kubelet.test.yml"} <= set(_files({}))


@pytest.mark.parametrize(("kubernetes", "prometheus"), [
    ({}, None),
    ({"group_by": ["cluster"], "pull_failure_ratio": 0.5, "pull_latency_threshold": "59m",
      "blocked_pods_page": 1}, {"scrape_interval": "75s", "evaluation_interval": "5m"}),
    ({"kubelet_selector": "", "kube_state_metrics_selector": 'job="ksm", env="prod"',
      "group_by": ["cluster", "region"], "pull_failure_ratio": 0.95,
      "pull_latency_threshold": "1s", "blocked_pods_page": 30},
     {"scrape_interval": "10s", "evaluation_interval": "15s"}),
])
def test_the_rules_pass_their_promtool_tests(
        tmp_path: Path, kubernetes: dict[str, Any], prometheus: dict[str, str] | None) -> None:
    promtool = require_binary("promtool")
    files = _files(kubernetes, prometheus)
    for name in ("rules/kubelet.yml", "tests/kubelet.test.yml"):
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_text(files[name])
    checked = subprocess.run([promtool, "check", "rules", str(tmp_path / "rules/kubelet.yml")],
                             capture_output=True, text=True, timeout=120)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    tested = subprocess.run([promtool, "test", "rules", str(tmp_path / "tests/kubelet.test.yml")],
                            capture_output=True, text=True, timeout=300)
    assert tested.returncode == 0, tested.stdout[-3000:] + tested.stderr[-3000:]


@pytest.mark.parametrize(("section", "key"), [
    ({"kubelet_selector": 'job=~"kube.*"'}, "kubelet_selector"),
    ({"kubelet_selector": '{job="kubelet"}'}, "kubelet_selector"),
    ({"kube_state_metrics_selector": 'job="a", job="b"'}, "kube_state_metrics_selector"),
    ({"group_by": ["le"]}, "group_by"),
    ({"pull_latency_threshold": "1h"}, "pull_latency_threshold"),  # above every bucket
    ({"pull_failure_ratio": 1}, "pull_failure_ratio"),
    ({"blocked_pods_page": 0}, "blocked_pods_page"),
])
def test_bad_sections_are_refused_naming_the_key(section: dict[str, Any], key: str) -> None:
    with pytest.raises(ValidationError) as error:
        Settings.model_validate({**BASE, "kubernetes": section})
    assert f"kubernetes.{key}" in str(error.value)
