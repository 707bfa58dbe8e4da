"""The ``kubernetes:`` section: rules, alerts and panels over what clusters already export.

Opt-in. The kubelet exports ``kubelet_image_pull_duration_seconds`` (alpha since
Kubernetes 1.30; successful pulls only, labelled with ``image_size_in_bytes`` size
buckets) and ``kubelet_runtime_operations_total`` / ``_errors_total`` with
``operation_type="pull_image"``; kube-state-metrics exports
``kube_pod_container_status_waiting_reason`` (and its init-container twin) with
``reason="ErrImagePull"`` or ``"ImagePullBackOff"``. The generator writes recording rules
and alerts over them; the exporter itself reads none of them.
"""

from __future__ import annotations

import re

from pydantic import Field, field_validator

from registry_slo._units import Duration
from registry_slo.config._base import Strict

__all__ = ["KUBELET_PULL_BUCKETS", "KubernetesConfig", "matchers"]

KUBELET_PULL_BUCKETS = (1.0, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 180.0, 240.0, 300.0, 360.0,
                        480.0, 600.0, 900.0, 1200.0, 1800.0, 2700.0, 3600.0)
"""``kubelet_image_pull_duration_seconds``' buckets (pkg/kubelet/metrics): a p95 threshold
must lie inside them, or the slow-pull alert could never fire."""

_MATCHER = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*"([^"\\]*)"\s*')
_LABEL = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")


def matchers(value: str) -> dict[str, str]:
    """``job="kubelet", cluster="prod"`` → ``{"job": "kubelet", "cluster": "prod"}``.

    Raises:
        ValueError: not equality matchers without braces, or a label named twice.
    """
    found: dict[str, str] = {}
    for part in value.split(",") if value.strip() else []:
        match = _MATCHER.fullmatch(part)
        if match is None:
            raise ValueError(
                f'{value!r}: not label equality matchers without braces, e.g. '
                'job="kubelet", cluster="prod" (regular expressions are not supported)')
        if match.group(1) in found:
            raise ValueError(f"{value!r} names {match.group(1)} twice")
        found[match.group(1)] = match.group(2)
    return found


class KubernetesConfig(Strict):
    """Pull signals as the clusters' kubelets and kube-state-metrics see them (M17).

    Attributes:
        kubelet_selector: label equality matchers of the kubelet series (PromQL, without
            braces), e.g. ``job="kubelet"``. Equality only: the generated promtool tests
            build series that match them (several clusters: ``group_by``).
        kube_state_metrics_selector: the same for kube-state-metrics' series.
        group_by: labels the figures are kept apart by (e.g. ``cluster`` where one
            Prometheus holds several clusters); pods blocked are kept by ``namespace`` too.
        pull_failure_ratio: ``RegistryKubeletPullFailures`` (ticket) fires when more than
            this share of the kubelets' image pulls fails.
        pull_latency_threshold: the p95 of successful kubelet pulls above which
            ``RegistryKubeletPullsSlow`` (ticket) fires.
        blocked_pods_page: ``RegistryPodsBlockedOnImagePull`` pages when at least this
            many pods wait on image pulls (ErrImagePull or ImagePullBackOff) at once; any
            pod waiting opens a ticket.
    """

    kubelet_selector: str = 'job="kubelet"'
    kube_state_metrics_selector: str = 'job="kube-state-metrics"'
    group_by: tuple[str, ...] = ()
    pull_failure_ratio: float = Field(default=0.05, gt=0, lt=1)
    pull_latency_threshold: Duration = Field(default=120.0, ge=KUBELET_PULL_BUCKETS[0],
                                             lt=KUBELET_PULL_BUCKETS[-1])
    blocked_pods_page: int = Field(default=10, ge=1)

    @field_validator("kubelet_selector", "kube_state_metrics_selector")
    @classmethod
    def _selector(cls, value: str) -> str:
        labels = matchers(value)
        return ", ".join(f'{name}="{text}"' for name, text in labels.items())

    def kubelet_labels(self) -> dict[str, str]:
        """The kubelet series' labels the selector names."""
        return matchers(self.kubelet_selector)

    def kube_state_metrics_labels(self) -> dict[str, str]:
        """kube-state-metrics' series' labels the selector names."""
        return matchers(self.kube_state_metrics_selector)

    @field_validator("group_by")
    @classmethod
    def _group_by(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for label in value:
            if not _LABEL.fullmatch(label) or label in ("le", "namespace"):
                raise ValueError(f"{label!r}: not a label to group by (le and namespace "
                                 "are taken)")
        if len(set(value)) != len(value):
            raise ValueError("lists a label twice")
        return value
