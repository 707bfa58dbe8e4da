"""``tests/kubelet.test.yml``: the promtool tests of ``rules/kubelet.yml``, over series
shaped as the kubelet and kube-state-metrics export them.

- healthy nodes (pulls succeeding in seconds, a pod waiting in ``ContainerCreating``):
  no alert in an hour;
- more pulls failing than ``pull_failure_ratio``: the failure ticket fires;
- a tenth of the successful pulls in the bucket above the latency threshold: the p95
  crosses it, the slow ticket fires;
- one namespace's pods in ``ImagePullBackOff``: the blocked ticket; ``blocked_pods_page``
  pods in ``ErrImagePull`` across namespaces: the page.
"""

from __future__ import annotations

from typing import Any

from registry_slo.config import KUBELET_PULL_BUCKETS, KubernetesConfig, Settings
from registry_slo.generate._model import num
from registry_slo.generate.alerts import render_alert
from registry_slo.generate.alerts._kubelet import (
    BLOCKED_FOR,
    FAILURES_FOR,
    KUBELET_BLOCKED_ALERT,
    KUBELET_FAILURES_ALERT,
    KUBELET_SLOW_ALERT,
    KUBELET_WIDESPREAD_ALERT,
    PULL_DURATION,
    PULL_ERRORS,
    PULL_OPERATIONS,
    SLOW_FOR,
    WAITING_REASON,
    WIDESPREAD_FOR,
    kubelet_alert_rules,
    kubelet_windows,
)
from registry_slo.generate.promtool_tests._series import (
    Timing,
    alert_test,
    expected_alert,
    no_alerts,
    series,
)
from registry_slo.sli.windows import HOUR, MINUTE

__all__ = ["kubelet_test_file"]

_ALERTS = (KUBELET_FAILURES_ALERT, KUBELET_SLOW_ALERT, KUBELET_BLOCKED_ALERT,
           KUBELET_WIDESPREAD_ALERT)
_PULLS_PER_SCRAPE = 2.0
_SIZE = "100MB-500MB"
_SLOW_SHARE = 0.1


def _node(k: KubernetesConfig, name: str) -> dict[str, str]:
    """A kubelet's own labels (as a kubelet scrape job gives them) with the selector's."""
    group = {label: "c1" for label in k.group_by}
    return {**group, "instance": f"{name}:10250", "node": name, **k.kubelet_labels()}


def _pod(k: KubernetesConfig, namespace: str, pod: str, reason: str) -> dict[str, str]:
    group = {label: "c1" for label in k.group_by}
    return {**group, "namespace": namespace, "pod": pod, "uid": f"uid-{pod}",
            "container": "app", "reason": reason, "instance": "ksm:8080",
            **k.kube_state_metrics_labels()}


def _pulls(k: KubernetesConfig, samples: int, failing_from: int | None,
           slow_from: int | None) -> list[dict[str, str]]:
    """One node: pull_image operations (from ``failing_from`` on, a share failing
    halfway between the alert's ratio and all), and the successful pulls' duration
    histogram (1 s pulls; from ``slow_from`` a tenth of them in the bucket above the
    latency threshold)."""
    share = (1 + k.pull_failure_ratio) / 2
    labels = _node(k, "node-1")
    pull = {**labels, "operation_type": "pull_image"}
    total, failed = [], []
    fast, slow = [], []
    count = errors = quick = late = 0.0
    for i in range(samples):
        count += _PULLS_PER_SCRAPE
        failing = failing_from is not None and i >= failing_from
        errors += _PULLS_PER_SCRAPE * share if failing else 0.0
        succeeded = _PULLS_PER_SCRAPE * (1 - share if failing else 1.0)
        if slow_from is not None and i >= slow_from:
            late += succeeded * _SLOW_SHARE  # enough to move the p95, not the median
            quick += succeeded * (1 - _SLOW_SHARE)
        else:
            quick += succeeded
        total.append(count)
        failed.append(errors)
        fast.append(quick)
        slow.append(late)
    low = next(b for b in KUBELET_PULL_BUCKETS if b >= k.pull_latency_threshold)
    out = [series(PULL_OPERATIONS, pull, total), series(PULL_ERRORS, pull, failed)]
    sized = {**labels, "image_size_in_bytes": _SIZE}
    for le in (*KUBELET_PULL_BUCKETS, float("inf")):
        # Quick pulls take 1 s (the first bucket); slow ones land above ``low``.
        values = [f + (s if le > low else 0.0) for f, s in zip(fast, slow, strict=True)]
        out.append(series(f"{PULL_DURATION}_bucket",
                          {**sized, "le": "+Inf" if le == float("inf") else num(le)}, values))
    out.append(series(f"{PULL_DURATION}_count", sized,
                      [f + s for f, s in zip(fast, slow, strict=True)]))
    return out


def _fires(rules: dict[str, dict[str, Any]], alert: str, at: float,
           *labels: dict[str, str]) -> dict[str, Any]:
    return alert_test(alert, at, [expected_alert(rules[alert], each) for each in labels])


def kubelet_test_file(settings: Settings, rule_file: str) -> dict[str, Any] | None:
    """The promtool test document of ``rules/kubelet.yml`` (``None`` without a
    ``kubernetes:`` section)."""
    k = settings.kubernetes
    if k is None:
        return None
    t = Timing.of(settings.prometheus)
    rules = {r.name: render_alert(r, settings.alerting)
             for r in kubelet_alert_rules(k, settings.prometheus)}
    rate, latency = kubelet_windows(settings.prometheus)
    hour = t.samples(2 * HOUR) + 1
    group = {label: "c1" for label in k.group_by}
    start = 20 * MINUTE
    healthy = t.scenario(
        "healthy nodes raise no pull alert",
        [*_pulls(k, hour, None, None),
         series(WAITING_REASON, _pod(k, "team-a", "web-1", "ContainerCreating"),
                [1.0] * hour)],
        no_alerts(list(_ALERTS), t.evaluations(0, HOUR)),
    )
    failing = t.scenario(
        "more of the kubelets' pulls fail than the ratio allows",
        _pulls(k, hour, t.samples(start), None),
        [*no_alerts([KUBELET_FAILURES_ALERT], [start]),
         _fires(rules, KUBELET_FAILURES_ALERT,
                t.round_up(t.next_sample(start) + rate + settings.prometheus.hold(
                    FAILURES_FOR) + t.evaluation), group)],
    )
    slow = t.scenario(
        "successful pulls take longer than the threshold",
        _pulls(k, hour, None, t.samples(start)),
        [*no_alerts([KUBELET_SLOW_ALERT], [start]),
         _fires(rules, KUBELET_SLOW_ALERT,
                t.round_up(t.next_sample(start) + latency + settings.prometheus.hold(SLOW_FOR)
                           + t.evaluation), group)],
    )
    one = _pod(k, "team-a", "web-1", "ImagePullBackOff")
    many = [_pod(k, f"ns-{i % 3}", f"job-{i}", "ErrImagePull")
            for i in range(k.blocked_pods_page)]

    def waiting(first: float) -> list[float | None]:
        return [None if i < t.samples(first) else 1.0 for i in range(hour)]

    blocked_at = t.round_up(t.next_sample(start) + settings.prometheus.hold(BLOCKED_FOR)
                            + t.evaluation)
    page_at = t.round_up(t.next_sample(start + HOUR)
                         + settings.prometheus.hold(WIDESPREAD_FOR) + t.evaluation)
    checks = [*no_alerts([KUBELET_BLOCKED_ALERT], [start]),
              _fires(rules, KUBELET_BLOCKED_ALERT, blocked_at, {**group, "namespace": "team-a"})]
    if k.blocked_pods_page > 1:  # one pod waiting does not page
        checks += no_alerts([KUBELET_WIDESPREAD_ALERT], [blocked_at])
    pods = t.scenario(
        "pods blocked on image pulls: one in a namespace, then many across namespaces",
        [series(WAITING_REASON, one, waiting(start)),
         *(series(WAITING_REASON, p, waiting(start + HOUR)) for p in many)],
        [*checks, _fires(rules, KUBELET_WIDESPREAD_ALERT, page_at, group)],
    )
    tests = [healthy, failing, slow, pods]
    return t.document(rule_file, tests)
