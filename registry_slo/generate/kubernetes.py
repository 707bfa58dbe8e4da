"""Kubernetes manifests: a kustomize base and one overlay per configured region.

One exporter runs per region, next to the registry it probes (``serve --region``), with
its own state volume, Service, ServiceMonitor and PrometheusRule (that region's groups of
the generated rules). Output layout, relative to the output directory::

    README.md
    base/kustomization.yaml       the ConfigMap (from registry-slo.yaml) and the resources
    base/registry-slo.yaml        the configuration, copied from the file generated from
    base/deployment.yaml          hardened pod; requests and limits from docs/benchmarks.md
    base/service.yaml
    base/state.yaml               PersistentVolumeClaim for state_dir
    base/networkpolicy.yaml       ingress: scrapes only (webhooks added per region)
    overlays/<region>/kustomization.yaml
    overlays/<region>/servicemonitor.yaml
    overlays/<region>/prometheusrule.yaml

Secrets are referenced, never written: a region's overlay mounts each file its
configuration names (password, TLS, webhook token) from the Secret
``registry-slo-secrets-<region>`` and maps each secret environment variable to a key of it.
"""

from __future__ import annotations

import hashlib
import re
import ssl
from pathlib import Path, PurePosixPath
from typing import Any

from registry_slo import __version__
from registry_slo._serving import WebProtection
from registry_slo._units import format_duration
from registry_slo.config import BasicAuth, RegionConfig, Settings, listen_address, web_protection
from registry_slo.generate import rule_groups
from registry_slo.generate._files import MARKER, compare_generated, marked_files, write_generated
from registry_slo.generate._model import GenerationError
from registry_slo.generate._yaml import dump

__all__ = [
    "CONFIG_KEY", "SECRET_PREFIX", "check", "generate", "overlay_name", "render",
]

CONFIG_KEY = "registry-slo.yaml"
"""The configuration's file name in the ConfigMap (mounted at ``/etc/registry-slo``)."""
SECRET_PREFIX = "registry-slo-secrets-"  # noqa: S105 - a name, not a secret
"""A region's Secret is this plus :func:`overlay_name` of the region (created by you)."""
SCRAPE_SECRET = "registry-slo-scrape"  # noqa: S105 - a name, not a secret
"""With a web configuration file: what Prometheus scrapes with (created by you)."""

_HEADER = (
    f"# {MARKER} from the configuration. Do not edit: change the\n"
    "# configuration and generate again (docs/deploy.md).\n"
)
_NAME = "registry-slo"
_APP = {"app.kubernetes.io/name": _NAME}
_REGION_LABEL = "registry-slo.dev/region"
_CONFIG_DIR = "/etc/registry-slo"
_STATE_DIR = "/var/lib/registry-slo"
_UID = 65532  # the container image's user (deploy/container/Dockerfile)
# Measured (docs/scaling.md, python -m bench.sizing): an exporter probing one region
# settles at 62 MiB RSS (203 MiB for 300 regions in one process); one region's probes
# cost well under 1% of a core (docs/benchmarks.md: 7.3 ms of CPU per probe run, three
# runs per 30 s), so the CPU request is for /metrics rendering and ingest.
_RESOURCES = {
    "requests": {"cpu": "50m", "memory": "128Mi"},
    "limits": {"memory": "256Mi"},
}
_STATE_SIZE = "1Gi"
_MAX_SUFFIX = 32
"""Keeps every name a DNS label of at most 63 characters ("registry-slo-config-" + the
suffix + kustomize's "-<10-character hash>")."""


def overlay_name(region: str) -> str:
    """The DNS-label form of a region name, used for the overlay directory, the resource
    name suffix and the region label (region names may hold ``.`` and ``_``)."""
    name = re.sub(r"[^a-z0-9-]+", "-", region).strip("-")
    name = re.sub(r"-{2,}", "-", name)
    if name == region and len(name) <= _MAX_SUFFIX:
        return name
    digest = hashlib.sha256(region.encode()).hexdigest()[:6]
    return f"{name[:_MAX_SUFFIX - 7].rstrip('-')}-{digest}".lstrip("-")


def _pointer(label: str) -> str:
    """``label`` as one JSON-pointer path segment."""
    return label.replace("~", "~0").replace("/", "~1")


def _secret_inputs(
    region: RegionConfig, settings: Settings, protection: WebProtection | None
) -> tuple[list[Path], list[str]]:
    """The secret files and environment variables the region's exporter reads
    (``protection``: what its web configuration file asks for)."""
    files: list[Path] = []
    envs: list[str] = []
    clients = [region]
    if region.pull_through_cache_of:
        clients.append(settings.region(region.pull_through_cache_of))
    for client in clients:
        if isinstance(client.auth, BasicAuth):
            if client.auth.password_file is not None:
                files.append(client.auth.password_file)
            if client.auth.password_env is not None:
                envs.append(client.auth.password_env)
        if client.tls is not None:
            files += [p for p in (client.tls.ca_file, client.tls.cert_file, client.tls.key_file)
                      if p is not None]
    notifications = settings.ingest.notifications
    if any(e.region == region.name for e in notifications.endpoints):
        if notifications.bearer_token_file is not None:
            files.append(notifications.bearer_token_file)
        if notifications.bearer_token_env is not None:
            envs.append(notifications.bearer_token_env)
    if settings.otel.ca_file is not None:
        files.append(settings.otel.ca_file)
    if settings.web_config_file is not None and protection is not None:
        files.append(settings.web_config_file)  # Basic users' hashes: a secret too
        if protection.tls is not None:
            files += [p for p in (protection.tls.cert_file, protection.tls.key_file,
                                  protection.tls.client_ca_file) if p is not None]
    return list(dict.fromkeys(files)), list(dict.fromkeys(envs))


def _secret_key(path: Path, taken: set[str]) -> str:
    """A Secret key for ``path``: its file name, else (names clash) the path's, numbered
    if that clashes too."""
    key = path.name if re.fullmatch(r"[-._a-zA-Z0-9]+", path.name) else "file"
    if key in taken:
        key = re.sub(r"[^-._a-zA-Z0-9]+", "-", str(PurePosixPath(path)).strip("/"))[-200:]
    numbered, count = key, 1
    while numbered in taken:
        count += 1
        numbered = f"{key}-{count}"
    taken.add(numbered)
    return numbered


def _check_mountable(path: Path) -> None:
    """A secret is mounted at its own path: not inside a directory the pod mounts whole."""
    for directory in (_CONFIG_DIR, _STATE_DIR, "/tmp"):  # noqa: S108 - the pod's volumes
        if PurePosixPath(path).is_relative_to(directory):
            raise GenerationError(
                f"{path}: in a pod, {directory} is a volume of its own, so a secret file "
                f"cannot be mounted inside it; name a path such as /run/secrets/"
                f"{path.name} in the configuration (or generate with --no-kubernetes)")


def _env_key(variable: str) -> str:
    return variable.lower().replace("_", "-")


def _http_check(path: str, protection: WebProtection | None) -> dict[str, Any]:
    """A kubelet check of ``path``: over HTTPS when the web configuration asks for TLS;
    a TCP connect when it asks for Basic users (the kubelet cannot send credentials
    from a Secret), so readiness is then "listening", not "every probe has run"."""
    if protection is not None and protection.users:
        return {"tcpSocket": {"port": "http"}}
    get: dict[str, Any] = {"path": path, "port": "http"}
    if protection is not None and protection.tls is not None:
        get["scheme"] = "HTTPS"
    return {"httpGet": get}


def _deployment(settings: Settings, protection: WebProtection | None) -> dict[str, Any]:
    _, port = listen_address(settings.listen)
    probe = {**_http_check("/healthz", protection), "periodSeconds": 10,
             "timeoutSeconds": 5, "failureThreshold": 3}
    ready = {**_http_check("/readyz", protection), "periodSeconds": 10,
             "timeoutSeconds": 5, "failureThreshold": 1}
    container = {
        "name": _NAME,
        "image": f"{_NAME}:{__version__}",
        "args": ["serve", "--config", f"{_CONFIG_DIR}/{CONFIG_KEY}"],
        "env": [
            # The pod's address, not the configuration's (often 127.0.0.1 on a VM).
            {"name": "REGISTRY_SLO_LISTEN", "value": f"0.0.0.0:{port}"},
            {"name": "REGISTRY_SLO_STATE_DIR", "value": _STATE_DIR},
            {"name": "REGISTRY_SLO_LOG_FORMAT", "value": "json"},
        ],
        "ports": [{"name": "http", "containerPort": port, "protocol": "TCP"}],
        "livenessProbe": probe,
        # Ready once every probe has run; startup allows the slowest first run.
        "readinessProbe": ready,
        "startupProbe": {**probe, "failureThreshold": 30},
        "resources": _RESOURCES,
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "runAsNonRoot": True,
            "capabilities": {"drop": ["ALL"]},
        },
        "volumeMounts": [
            {"name": "config", "mountPath": _CONFIG_DIR, "readOnly": True},
            {"name": "state", "mountPath": _STATE_DIR},
            {"name": "tmp", "mountPath": "/tmp"},  # noqa: S108 - the pod's own emptyDir
        ],
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": _NAME, "labels": dict(_APP)},
        "spec": {
            # One writer of the state volume and of the region's heartbeats: a second
            # replica would count every probe twice (docs/scaling.md).
            "replicas": 1,
            "strategy": {"type": "Recreate"},
            "selector": {"matchLabels": dict(_APP)},
            "template": {
                "metadata": {"labels": dict(_APP)},
                "spec": {
                    "automountServiceAccountToken": False,
                    "enableServiceLinks": False,
                    "securityContext": {
                        "runAsNonRoot": True, "runAsUser": _UID, "runAsGroup": _UID,
                        "fsGroup": _UID, "seccompProfile": {"type": "RuntimeDefault"},
                    },
                    "terminationGracePeriodSeconds": 30,
                    "containers": [container],
                    "volumes": [
                        {"name": "config", "configMap": {"name": f"{_NAME}-config"}},
                        {"name": "state",
                         "persistentVolumeClaim": {"claimName": f"{_NAME}-state"}},
                        {"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}},
                    ],
                },
            },
        },
    }


def _base(settings: Settings, config_text: str, protection: WebProtection | None
          ) -> dict[str, str]:
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": _NAME, "labels": dict(_APP)},
        "spec": {"selector": dict(_APP),
                 "ports": [{"name": "http", "port": listen_address(settings.listen)[1],
                            "targetPort": "http", "protocol": "TCP"}]},
    }
    state = {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": f"{_NAME}-state", "labels": dict(_APP)},
        "spec": {"accessModes": ["ReadWriteOnce"],
                 "resources": {"requests": {"storage": _STATE_SIZE}}},
    }
    policy = {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": _NAME, "labels": dict(_APP)},
        "spec": {
            "podSelector": {"matchLabels": dict(_APP)},
            "policyTypes": ["Ingress"],
            # Scrapes from Prometheus pods in any namespace; probes leave freely.
            "ingress": [{
                "from": [{"namespaceSelector": {},
                          "podSelector": {"matchLabels": {"app.kubernetes.io/name":
                                                          "prometheus"}}}],
                "ports": [{"port": "http", "protocol": "TCP"}],
            }],
        },
    }
    kustomization = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "labels": [{"pairs": {"app.kubernetes.io/part-of": _NAME,
                              "app.kubernetes.io/version": __version__}}],
        "resources": ["deployment.yaml", "service.yaml", "state.yaml", "networkpolicy.yaml"],
        "configMapGenerator": [{"name": f"{_NAME}-config", "files": [CONFIG_KEY],
                                "options": {"labels": dict(_APP)}}],
    }
    return {
        "base/kustomization.yaml": dump(kustomization, header=_HEADER),
        "base/deployment.yaml": dump(_deployment(settings, protection), header=_HEADER),
        "base/service.yaml": dump(service, header=_HEADER),
        "base/state.yaml": dump(state, header=_HEADER, comment=(
            "The SLO windows and log checkpoints survive a restart or reschedule only on\n"
            "this volume (with an emptyDir a new pod starts its windows empty and reads\n"
            "logs from where read_from says). ReadWriteOnce ties the pod to the volume's\n"
            "zone; the Deployment's Recreate strategy keeps one writer at a time.")),
        "base/networkpolicy.yaml": dump(policy, header=_HEADER),
        f"base/{CONFIG_KEY}": _HEADER + config_text,
    }


def _region_patches(region: RegionConfig, settings: Settings, name: str,
                    protection: WebProtection | None) -> list[dict[str, Any]]:
    """JSON patches making the base this region's exporter."""
    def label(path: str) -> dict[str, Any]:
        return {"op": "add", "path": f"{path}/{_pointer(_REGION_LABEL)}", "value": name}

    container = "/spec/template/spec/containers/0"
    deployment: list[dict[str, Any]] = [
        label("/spec/selector/matchLabels"),
        {"op": "add", "path": f"{container}/args/-", "value": f"--region={region.name}"},
    ]
    service: list[dict[str, Any]] = [label("/spec/selector")]
    policy: list[dict[str, Any]] = [label("/spec/podSelector/matchLabels")]
    files, envs = _secret_inputs(region, settings, protection)
    secret = f"{SECRET_PREFIX}{name}"
    for path in files:
        _check_mountable(path)
    if files:
        deployment.append({"op": "add", "path": "/spec/template/spec/volumes/-", "value": {
            "name": "secrets", "secret": {"secretName": secret, "defaultMode": 0o440}}})
        taken: set[str] = set()
        for path in files:
            deployment.append({"op": "add", "path": f"{container}/volumeMounts/-", "value": {
                "name": "secrets", "mountPath": str(PurePosixPath(path)),
                "subPath": _secret_key(path, taken), "readOnly": True}})
    for variable in envs:
        deployment.append({"op": "add", "path": f"{container}/env/-", "value": {
            "name": variable,
            "valueFrom": {"secretKeyRef": {"name": secret, "key": _env_key(variable)}}}})
    notifications = settings.ingest.notifications
    if any(e.region == region.name for e in notifications.endpoints):
        _, port = listen_address(notifications.listen)
        deployment += [
            {"op": "add", "path": f"{container}/env/-", "value": {
                "name": "REGISTRY_SLO_INGEST__NOTIFICATIONS__LISTEN",
                "value": f"0.0.0.0:{port}"}},
            {"op": "add", "path": f"{container}/ports/-", "value": {
                "name": "webhooks", "containerPort": port, "protocol": "TCP"}},
        ]
        service.append({"op": "add", "path": "/spec/ports/-", "value": {
            "name": "webhooks", "port": port, "targetPort": "webhooks", "protocol": "TCP"}})
        # Registries send notifications from anywhere in the cluster; narrow `from` to
        # your registry's pods (docs/deploy.md).
        policy.append({"op": "add", "path": "/spec/ingress/-", "value": {
            "from": [{"namespaceSelector": {}}],
            "ports": [{"port": "webhooks", "protocol": "TCP"}]}})
    return [
        {"target": {"kind": kind, "name": _NAME}, "patch": dump(ops, header="").strip() + "\n"}
        for kind, ops in (("Deployment", deployment), ("Service", service),
                          ("NetworkPolicy", policy))
    ]


def _scrape_credentials(protection: WebProtection | None) -> dict[str, Any]:
    """What Prometheus needs to scrape through the web configuration, from the Secret
    :data:`SCRAPE_SECRET` the user creates beside the ServiceMonitor: ``ca.crt`` (TLS),
    ``tls.crt`` and ``tls.key`` (client certificates verified), ``username`` and
    ``password`` (Basic users)."""
    if protection is None:
        return {}
    endpoint: dict[str, Any] = {}
    if protection.tls is not None:
        tls: dict[str, Any] = {"ca": {"secret": {"name": SCRAPE_SECRET, "key": "ca.crt"}}}
        if protection.tls.client_auth != ssl.CERT_NONE:
            tls["cert"] = {"secret": {"name": SCRAPE_SECRET, "key": "tls.crt"}}
            tls["keySecret"] = {"name": SCRAPE_SECRET, "key": "tls.key"}
        endpoint |= {"scheme": "https", "tlsConfig": tls}
    if protection.users:
        endpoint["basicAuth"] = {
            "username": {"name": SCRAPE_SECRET, "key": "username"},
            "password": {"name": SCRAPE_SECRET, "key": "password"},
        }
    return endpoint


def _scrape_keys(endpoint: Any) -> list[str]:
    """The keys of :data:`SCRAPE_SECRET` a ServiceMonitor endpoint reads."""
    if isinstance(endpoint, dict):
        if endpoint.get("name") == SCRAPE_SECRET and "key" in endpoint:
            return [str(endpoint["key"])]
        return [k for value in endpoint.values() for k in _scrape_keys(value)]
    return []


def _overlay(
    region: RegionConfig, settings: Settings, groups: list[dict[str, Any]],
    protection: WebProtection | None,
) -> dict[str, str]:
    name = overlay_name(region.name)
    selector = {**_APP, _REGION_LABEL: name}
    monitor = {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "ServiceMonitor",
        "metadata": {"name": _NAME, "labels": dict(_APP)},
        "spec": {
            "selector": {"matchLabels": selector},
            "endpoints": [{
                "port": "http",
                "path": "/metrics",
                "interval": format_duration(settings.prometheus.scrape_interval),
                "scrapeTimeout": format_duration(min(10.0, settings.prometheus.scrape_interval)),
                **_scrape_credentials(protection),
            }],
        },
    }
    rule = {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {"name": _NAME, "labels": dict(_APP)},
        "spec": {"groups": groups},
    }
    kustomization = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "resources": ["../../base", "servicemonitor.yaml", "prometheusrule.yaml"],
        "nameSuffix": f"-{name}",
        "labels": [{"pairs": {_REGION_LABEL: name}, "includeSelectors": False,
                    "includeTemplates": True}],
        "commonAnnotations": {"registry-slo.dev/region-name": region.name},
        "patches": _region_patches(region, settings, name, protection),
    }
    base = f"overlays/{name}"
    return {
        f"{base}/kustomization.yaml": dump(kustomization, header=_HEADER),
        f"{base}/servicemonitor.yaml": dump(monitor, header=_HEADER),
        f"{base}/prometheusrule.yaml": dump(rule, header=_HEADER, comment=(
            f"The groups of alerts/rules/*.yml for region {region.name}.")),
    }


def _readme(settings: Settings, protection: WebProtection | None) -> str:
    lines = [
        f"<!-- {MARKER} from the configuration. Do not edit. -->",
        "# Kubernetes: one exporter per region",
        "",
        "`base/` is the exporter; each `overlays/<region>/` runs it for one region "
        "(`serve --region`) with its ServiceMonitor and PrometheusRule. "
        "See `docs/deploy.md`.",
        "",
        "| region | overlay | Secret it mounts |",
        "|---|---|---|",
    ]
    for region in settings.regions:
        name = overlay_name(region.name)
        files, envs = _secret_inputs(region, settings, protection)
        secret = f"`{SECRET_PREFIX}{name}`" if files or envs else "none"
        lines.append(f"| {region.name} | `overlays/{name}` | {secret} |")
    keys = list(_scrape_keys(_scrape_credentials(protection)))
    if keys:
        lines += ["", f"The web configuration file protects the listeners: every "
                  f"ServiceMonitor scrapes with the Secret `{SCRAPE_SECRET}` (keys "
                  f"{', '.join(f'`{k}`' for k in keys)}), which you create beside it."]
    lines += ["", "```sh", "kubectl kustomize overlays/<region>    # render one region",
              "kubectl apply -k overlays/<region>", "```", ""]
    return "\n".join(lines)


def render(settings: Settings, config_text: str) -> dict[str, str]:
    """Every manifest's text, by path relative to the output directory.

    Args:
        settings: the validated configuration.
        config_text: the configuration file's text, which the ConfigMap carries.

    Raises:
        GenerationError: when an SLO cannot be expressed in PromQL, or a secret file's
            path cannot be mounted in a pod (the message names it).
    """
    by_region: dict[str, list[dict[str, Any]]] = {r.name: [] for r in settings.regions}
    for groups in rule_groups(settings).values():
        for name, group in groups:
            by_region[name].append(group)
    # Read once: it names TLS files whose certificates are loaded to check them.
    protection = web_protection(settings)
    files = _base(settings, config_text, protection)
    names = [overlay_name(r.name) for r in settings.regions]
    if len(set(names)) != len(names):  # pragma: no cover - the hash suffix prevents it
        raise AssertionError(f"overlay names collide: {names}")
    for region in settings.regions:
        files.update(_overlay(region, settings, by_region[region.name], protection))
    files["README.md"] = _readme(settings, protection)
    return dict(sorted(files.items()))


def _generated_files(directory: Path) -> dict[str, Path]:
    if not directory.is_dir():
        return {}
    candidates = sorted(p for p in directory.rglob("*") if p.is_file())
    return marked_files(directory, candidates, lambda _, text: MARKER in text[:300])


def generate(settings: Settings, config_text: str, out_dir: str | Path) -> list[Path]:
    """Write the manifests into ``out_dir`` (e.g. ``deploy/kubernetes``), removing those an
    earlier generation wrote that are no longer produced (a region removed).

    Raises:
        GenerationError: a file to write exists and was not generated.
    """
    out = Path(out_dir)
    return write_generated(render(settings, config_text), out, _generated_files(out),
                           "--kubernetes")


def check(settings: Settings, config_text: str, committed_dir: str | Path) -> list[str]:
    """Compare ``committed_dir`` with a fresh generation; empty when up to date."""
    directory = Path(committed_dir)
    return compare_generated(render(settings, config_text), _generated_files(directory),
                             directory)
