"""``rules/kubelet.yml``: image pulls as the clusters' nodes see them (M17, F2), from the
series the kubelet and kube-state-metrics already export (the ``kubernetes:`` section).

One group, cluster-wide (not per region: a node pulls from whichever registry its pods
name). Recording rules, then four alerts:

- ``RegistryKubeletPullFailures`` (ticket): more than ``pull_failure_ratio`` of the
  kubelets' ``pull_image`` runtime operations fail;
- ``RegistryKubeletPullsSlow`` (ticket): the p95 of successful pulls is above
  ``pull_latency_threshold`` (``kubelet_image_pull_duration_seconds`` records successful
  pulls only, kept apart by image size bucket);
- ``RegistryPodsBlockedOnImagePull`` (ticket): pods of a namespace wait in
  ``ErrImagePull`` / ``ImagePullBackOff``;
- ``RegistryPodsBlockedOnImagePullWidespread`` (page): at least ``blocked_pods_page`` pods
  wait at once — deployments are failing because of images, not one bad reference.
"""

from __future__ import annotations

from typing import Any

from registry_slo._units import format_duration, human_duration
from registry_slo.config import AlertingConfig, KubernetesConfig, PrometheusConfig
from registry_slo.generate._model import num
from registry_slo.generate.alerts._rule import AlertRule, render_alert

__all__ = [
    "BLOCKED_FOR",
    "BLOCKED_RECORD",
    "FAILURES_FOR",
    "KUBELET_BLOCKED_ALERT",
    "KUBELET_FAILURES_ALERT",
    "KUBELET_GROUP",
    "KUBELET_SLOW_ALERT",
    "KUBELET_WIDESPREAD_ALERT",
    "PULLS_RECORD",
    "PULL_DURATION",
    "PULL_ERRORS",
    "PULL_ERRORS_RECORD",
    "PULL_OPERATIONS",
    "SLOW_FOR",
    "SLOW_RECORD",
    "WAITING_REASON",
    "WIDESPREAD_FOR",
    "kubelet_alert_rules",
    "kubelet_group",
    "kubelet_windows",
]

KUBELET_GROUP = "registry-slo-kubelet"
PULL_DURATION = "kubelet_image_pull_duration_seconds"
PULL_OPERATIONS = "kubelet_runtime_operations_total"
PULL_ERRORS = "kubelet_runtime_operations_errors_total"
WAITING_REASON = "kube_pod_container_status_waiting_reason"
INIT_WAITING_REASON = "kube_pod_init_container_status_waiting_reason"
BLOCKING_REASONS = ("ErrImagePull", "ImagePullBackOff")

PULLS_RECORD = "registry_slo:kubelet_image_pulls:rate"
PULL_ERRORS_RECORD = "registry_slo:kubelet_image_pull_errors:rate"
SLOW_RECORD = "registry_slo:kubelet_image_pull_duration_seconds:p95"
BLOCKED_RECORD = "registry_slo:pods_blocked_on_image_pull"

KUBELET_FAILURES_ALERT = "RegistryKubeletPullFailures"
KUBELET_SLOW_ALERT = "RegistryKubeletPullsSlow"
KUBELET_BLOCKED_ALERT = "RegistryPodsBlockedOnImagePull"
KUBELET_WIDESPREAD_ALERT = "RegistryPodsBlockedOnImagePullWidespread"

FAILURES_FOR = 600
SLOW_FOR = 1800
BLOCKED_FOR = 900
WIDESPREAD_FOR = 600
_RATE_WINDOW = 600
"""Pulls are rarer than requests: rates over 10 minutes."""
_LATENCY_WINDOW = 1800
"""The p95 of successful pulls over 30 minutes (a handful of pulls makes no p95)."""


def kubelet_windows(prometheus: PrometheusConfig) -> tuple[float, float]:
    """The rate and latency windows, each at least four scrapes."""
    return prometheus.window(_RATE_WINDOW), prometheus.window(_LATENCY_WINDOW)


def _by(k: KubernetesConfig, *more: str) -> str:
    labels = [*k.group_by, *more]
    return f"by ({', '.join(labels)}) " if labels else ""


def _records(k: KubernetesConfig, prometheus: PrometheusConfig) -> list[dict[str, Any]]:
    rate, latency = (format_duration(w) for w in kubelet_windows(prometheus))
    pull = f'operation_type="pull_image", {k.kubelet_selector}'
    reasons = "|".join(BLOCKING_REASONS)
    waiting = (f'{{__name__=~"{WAITING_REASON}|{INIT_WAITING_REASON}", '
               f'reason=~"{reasons}", {k.kube_state_metrics_selector}}}')
    return [
        {"record": PULLS_RECORD,
         "expr": f"sum {_by(k)}(rate({PULL_OPERATIONS}{{{pull}}}[{rate}]))"},
        {"record": PULL_ERRORS_RECORD,
         "expr": f"sum {_by(k)}(rate({PULL_ERRORS}{{{pull}}}[{rate}]))"},
        {"record": SLOW_RECORD,
         "expr": f"histogram_quantile(0.95, sum {_by(k, 'le')}(rate({PULL_DURATION}_bucket"
                 f"{{{k.kubelet_selector}}}[{latency}])))"},
        # A waiting container is 1 while it waits: the sum is how many wait.
        {"record": BLOCKED_RECORD,
         "expr": f"sum {_by(k, 'namespace')}({waiting} == 1)"},
    ]


def kubelet_alert_rules(k: KubernetesConfig, prometheus: PrometheusConfig
                        ) -> list[AlertRule]:
    """The four alerts of the group (see the module docstring)."""
    rate, latency = (human_duration(w) for w in kubelet_windows(prometheus))
    by = _by(k)
    return [
        AlertRule(
            name=KUBELET_FAILURES_ALERT,
            expr=f"{PULL_ERRORS_RECORD}\n/\n({PULLS_RECORD} > 0)\n> "
                 f"{num(k.pull_failure_ratio)}\n",
            severity="ticket",
            summary="kubelets fail to pull images",
            description=(
                f"More than {num(100 * k.pull_failure_ratio)}% of the image pulls the "
                f"kubelets ran over {rate} failed (kubelet_runtime_operations_errors_total"
                '{operation_type="pull_image"}): what nodes see of the registries, '
                "whatever the probes say. Check the Kubernetes events (Failed, BackOff) "
                "for the images and reasons."
            ),
            runbook="registry-kubelet-pull-failures",
            about=None,
            for_seconds=prometheus.hold(FAILURES_FOR),
        ),
        AlertRule(
            name=KUBELET_SLOW_ALERT,
            expr=f"{SLOW_RECORD} > {num(k.pull_latency_threshold)}\n",
            severity="ticket",
            summary="kubelet image pulls are slow",
            description=(
                f"The p95 of successful kubelet image pulls over {latency} is above "
                f"{human_duration(k.pull_latency_threshold)} (kubelet_image_pull_duration_"
                "seconds): pods start late. Compare by image_size_in_bytes bucket on the "
                "on-call dashboard: a registry, cache or network problem slows every size."
            ),
            runbook="registry-kubelet-pulls-slow",
            about=None,
            for_seconds=prometheus.hold(SLOW_FOR),
        ),
        AlertRule(
            name=KUBELET_BLOCKED_ALERT,
            expr=f"{BLOCKED_RECORD} > 0\n",
            severity="ticket",
            summary="pods in {{ $labels.namespace }} are blocked on image pulls",
            description=(
                "Pod containers in {{ $labels.namespace }} have waited in "
                "ErrImagePull or ImagePullBackOff for "
                f"{format_duration(BLOCKED_FOR)} (kube-state-metrics): failed deployments "
                "due to images (M17). A wrong reference or missing credentials is theirs; "
                "many namespaces at once is the registry's."
            ),
            runbook="registry-pods-blocked-on-image-pull",
            about=None,
            for_seconds=prometheus.hold(BLOCKED_FOR),
        ),
        AlertRule(
            name=KUBELET_WIDESPREAD_ALERT,
            expr=f"sum {by}({BLOCKED_RECORD}) >= {k.blocked_pods_page}\n",
            severity="page",
            summary="many pods are blocked on image pulls",
            description=(
                f"At least {k.blocked_pods_page} pod containers have waited in ErrImagePull "
                f"or ImagePullBackOff at once for {format_duration(WIDESPREAD_FOR)}: "
                "deployments fail because images cannot be pulled (M17, F2). Check the "
                "registries' SLOs, the pull-through caches and the nodes' credentials."
            ),
            runbook="registry-pods-blocked-on-image-pull-widespread",
            about=None,
            for_seconds=prometheus.hold(WIDESPREAD_FOR),
        ),
    ]


def kubelet_group(k: KubernetesConfig, alerting: AlertingConfig,
                  prometheus: PrometheusConfig) -> dict[str, Any]:
    """The rule group of ``rules/kubelet.yml``."""
    return {
        "name": KUBELET_GROUP,
        "rules": [*_records(k, prometheus),
                  *(render_alert(rule, alerting) for rule in kubelet_alert_rules(k, prometheus))],
    }
