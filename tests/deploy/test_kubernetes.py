"""deploy/kubernetes: the kustomize base and per-region overlays ``registry-slo generate``
writes, rendered by a real kustomize (``kubectl kustomize``), validated offline against
the Kubernetes API schemas (kubernetes-validate, strict) and the Prometheus Operator's
CRDs (vendored under crds/), their rules checked by promtool, and the pod's command run
as the Deployment runs it."""

from __future__ import annotations

import copy
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from unittest import mock

import httpx
import jsonschema
import kubernetes_validate
import pytest
import trustme
import yaml
from conftest import require_binary
from harness.fuzzing import fuzz_settings
from harness.serve import ServeProcess
from hypothesis import example, given
from hypothesis import strategies as st

from registry_slo.config import Settings, load_config
from registry_slo.devenv._process import free_port
from registry_slo.devenv.registry import LocalRegistry
from registry_slo.generate import GenerationError, kubernetes

ROOT = Path(__file__).resolve().parents[2]
COMMITTED = ROOT / "deploy" / "kubernetes"
EXAMPLE = ROOT / "examples" / "regions.yaml"
CRDS = Path(__file__).parent / "crds"
K8S_VERSIONS = ("1.29.0", kubernetes_validate.latest_version())
"""The oldest Kubernetes minor still commonly run, and the newest the validator knows."""
DNS_LABEL = re.compile(r"[a-z]([-a-z0-9]*[a-z0-9])?")
OVERLAYS = sorted(p.name for p in (COMMITTED / "overlays").iterdir())


def kustomize(directory: Path) -> list[dict[str, Any]]:
    """What ``kubectl kustomize DIRECTORY`` renders."""
    kubectl = require_binary("kubectl")
    done = subprocess.run([kubectl, "kustomize", str(directory)], capture_output=True,
                          text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    return [doc for doc in yaml.safe_load_all(done.stdout) if doc]


def _strict(schema: Any) -> Any:
    """``schema`` with unknown fields refused wherever the CRD lists the fields (as an API
    server with strict field validation does)."""
    if isinstance(schema, dict):
        schema = {key: _strict(value) for key, value in schema.items()}
        if ("properties" in schema and "additionalProperties" not in schema
                and not schema.get("x-kubernetes-preserve-unknown-fields")):
            schema["additionalProperties"] = False
    elif isinstance(schema, list):
        schema = [_strict(item) for item in schema]
    return schema


def _crd_validators() -> dict[str, jsonschema.protocols.Validator]:
    validators: dict[str, jsonschema.protocols.Validator] = {}
    for path in sorted(CRDS.glob("*.yaml")):
        crd = yaml.safe_load(path.read_text())
        version = next(v for v in crd["spec"]["versions"] if v["name"] == "v1")
        schema = _strict(version["schema"]["openAPIV3Schema"])
        validators[crd["spec"]["names"]["kind"]] = jsonschema.Draft7Validator(schema)
    return validators


CRD_VALIDATORS = _crd_validators()


def validate(doc: dict[str, Any]) -> None:
    """Fail unless ``doc`` is valid for its kind: Kubernetes schemas or the CRD's."""
    if doc["apiVersion"].startswith("monitoring.coreos.com/"):
        errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
                  for e in CRD_VALIDATORS[doc["kind"]].iter_errors(doc)]
        assert not errors, f"{doc['kind']} {doc['metadata']['name']}: {errors}"
        return
    for version in K8S_VERSIONS:
        try:
            kubernetes_validate.validate(doc, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            raise AssertionError(f"{doc['kind']} {doc['metadata']['name']} "
                                 f"(Kubernetes {version}): {exc.message}") from None
    name = doc["metadata"]["name"]
    assert len(name) <= 63 and DNS_LABEL.fullmatch(name), name


def by_kind(docs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    kinds = [doc["kind"] for doc in docs]
    assert len(kinds) == len(set(kinds)), kinds
    return {doc["kind"]: doc for doc in docs}


def _matches(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(key) == value for key, value in selector.items())


def test_the_committed_manifests_are_what_the_example_generates() -> None:
    settings = load_config(EXAMPLE)
    assert kubernetes.check(settings, EXAMPLE.read_text(), COMMITTED) == []
    assert sorted(r.name for r in settings.regions) == OVERLAYS


@pytest.mark.parametrize("directory", ["base", *(f"overlays/{o}" for o in OVERLAYS)])
def test_every_kustomization_renders_and_validates(directory: str) -> None:
    docs = kustomize(COMMITTED / directory)
    kinds = sorted(doc["kind"] for doc in docs)
    expected = ["ConfigMap", "Deployment", "NetworkPolicy", "PersistentVolumeClaim", "Service"]
    if directory != "base":
        expected = sorted([*expected, "PrometheusRule", "ServiceMonitor"])
    assert kinds == expected
    for doc in docs:
        validate(doc)


def test_the_pod_is_locked_down() -> None:
    deployment = by_kind(kustomize(COMMITTED / "base"))["Deployment"]
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod["automountServiceAccountToken"] is False
    context = container["securityContext"]
    assert context["readOnlyRootFilesystem"] is True
    assert context["allowPrivilegeEscalation"] is False
    assert context["capabilities"] == {"drop": ["ALL"]}
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["resources"]["requests"]["memory"] and container["resources"]["limits"]
    mounts = {m["mountPath"] for m in container["volumeMounts"]}
    env = {e["name"]: e.get("value") for e in container["env"]}
    # Everything the exporter writes is on a volume: the root filesystem is read-only.
    assert env["REGISTRY_SLO_STATE_DIR"] in mounts and "/tmp" in mounts
    assert deployment["spec"]["replicas"] == 1
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}


def test_each_region_selects_only_itself() -> None:
    rendered = {name: by_kind(kustomize(COMMITTED / "overlays" / name)) for name in OVERLAYS}
    names = [(doc["kind"], doc["metadata"]["name"])
             for docs in rendered.values() for doc in docs.values()]
    assert len(names) == len(set(names)), "two overlays create the same object"
    for name, docs in rendered.items():
        for other, theirs in rendered.items():
            own = other == name
            pods = theirs["Deployment"]["spec"]["template"]["metadata"]["labels"]
            service = theirs["Service"]["metadata"]["labels"]
            assert _matches(docs["Deployment"]["spec"]["selector"]["matchLabels"], pods) == own
            assert _matches(docs["Service"]["spec"]["selector"], pods) == own
            assert _matches(docs["NetworkPolicy"]["spec"]["podSelector"]["matchLabels"],
                            pods) == own
            assert _matches(docs["ServiceMonitor"]["spec"]["selector"]["matchLabels"],
                            service) == own
        pod = docs["Deployment"]["spec"]["template"]["spec"]
        container = pod["containers"][0]
        region = docs["Deployment"]["metadata"]["annotations"]["registry-slo.dev/region-name"]
        assert container["args"][-1] == f"--region={region}"
        volumes = {v["name"]: v for v in pod["volumes"]}
        assert volumes["state"]["persistentVolumeClaim"]["claimName"] == (
            docs["PersistentVolumeClaim"]["metadata"]["name"])
        assert volumes["config"]["configMap"]["name"] == docs["ConfigMap"]["metadata"]["name"]
        assert docs["ConfigMap"]["data"][kubernetes.CONFIG_KEY].endswith(EXAMPLE.read_text())
        ports = {p["name"] for p in docs["Service"]["spec"]["ports"]}
        assert ports <= {p["name"] for p in container["ports"]}
        assert {e["port"] for e in docs["ServiceMonitor"]["spec"]["endpoints"]} <= ports


def test_the_prometheus_rules_are_exactly_the_generated_rules(tmp_path: Path) -> None:
    promtool = require_binary("promtool")
    generated = [
        group for path in sorted((ROOT / "alerts" / "rules").glob("*.yml"))
        for group in yaml.safe_load(path.read_text())["groups"]
    ]
    embedded = []
    for name in OVERLAYS:
        rule = by_kind(kustomize(COMMITTED / "overlays" / name))["PrometheusRule"]
        groups = rule["spec"]["groups"]
        assert groups and all(g["name"].endswith(f"/{name}") for g in groups)
        embedded += groups
        path = tmp_path / f"{name}.yml"
        path.write_text(yaml.safe_dump({"groups": groups}))
        done = subprocess.run([promtool, "check", "rules", str(path)], capture_output=True,
                              text=True, timeout=120, check=False)
        assert done.returncode == 0, done.stdout + done.stderr
    key = lambda group: group["name"]  # noqa: E731
    assert sorted(embedded, key=key) == sorted(generated, key=key)


SECRETS_CONFIG = """
listen: 127.0.0.1:9731
regions:
  - name: primary
    url: https://primary.example.com
    auth: {{type: basic, username: prober, password_file: {password}}}
    tls: {{ca_file: {ca}}}
  - name: ap.cache_1
    url: https://cache.example.com
    pull_through_cache_of: primary
    auth: {{type: basic, username: prober, password_env: CACHE_PASSWORD}}
    probe: {{enabled: [pull, auth, cache]}}
ingest:
  notifications:
    listen: 127.0.0.1:9732
    bearer_token_file: {token}
    endpoints: [{{name: hooks, region: ap.cache_1, format: distribution}}]
"""


SECRETS_HOME = "/var/tmp"
"""Where these tests keep secret files: not under /tmp, which the pod mounts whole (a
secret there is refused, see below)."""


@pytest.fixture
def secrets_home() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(dir=SECRETS_HOME, prefix="registry-slo-test-") as home:
        yield Path(home)


def _secret_setup(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, list[str]]:
    values = ["pw-value-3f9a1c", "-----BEGIN CERTIFICATE-----x", "token-value-77ab20",
              "env-value-5d1e0b"]
    files = {}
    for key, value in zip(("password", "ca", "token"), values, strict=False):
        files[key] = tmp_path / "run" / "secrets" / key
        files[key].parent.mkdir(parents=True, exist_ok=True)
        files[key].write_text(value)
    monkeypatch.setenv("CACHE_PASSWORD", values[3])
    config = tmp_path / "regions.yaml"
    config.write_text(SECRETS_CONFIG.format(**files))
    return config, values


def test_secrets_are_mounted_by_reference_never_written(
    tmp_path: Path, secrets_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config, values = _secret_setup(secrets_home, monkeypatch)
    out = tmp_path / "k8s"
    settings = load_config(config)
    kubernetes.generate(settings, config.read_text(), out)
    texts = "".join(p.read_text() for p in out.rglob("*") if p.is_file())
    secrets = secrets_home / "run" / "secrets"
    cache = kubernetes.overlay_name("ap.cache_1")
    assert DNS_LABEL.fullmatch(cache) and cache != "ap.cache_1"
    for name, wanted_files, wanted_env in (
        ("primary", {secrets / "password", secrets / "ca"}, set()),
        # The cache probe pushes to the upstream: the cache's exporter needs its secrets.
        (cache, {secrets / "password", secrets / "ca", secrets / "token"},
         {"CACHE_PASSWORD"}),
    ):
        docs = kustomize(out / "overlays" / name)
        rendered = yaml.safe_dump_all(docs)
        for value in values:
            assert value not in rendered and value not in texts
        for doc in docs:
            validate(doc)
        pod = by_kind(docs)["Deployment"]["spec"]["template"]["spec"]
        (container,) = pod["containers"]
        secret = f"{kubernetes.SECRET_PREFIX}{name}"
        volume = next(v for v in pod["volumes"] if v["name"] == "secrets")
        assert volume["secret"]["secretName"] == secret
        mounts = {Path(m["mountPath"]): m["subPath"] for m in container["volumeMounts"]
                  if m["name"] == "secrets"}
        assert set(mounts) == wanted_files
        assert len(set(mounts.values())) == len(mounts)
        env = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in container["env"]
               if "valueFrom" in e}
        assert set(env) == wanted_env
        assert all(ref["name"] == secret for ref in env.values())
        webhooks = any(p["name"] == "webhooks" for p in container["ports"])
        assert webhooks == (name == cache)


@pytest.mark.parametrize(("client_auth", "users"), [
    ("NoClientCert", False), ("RequireAndVerifyClientCert", True)])
def test_a_web_configuration_is_mounted_and_scraped_through(
    tmp_path: Path, secrets_home: Path, client_auth: str, users: bool,
) -> None:
    """With ``web_config_file``, the pod mounts it and the TLS files it names, the kubelet
    checks over HTTPS (a TCP connect when Basic users are required: the kubelet has no
    credentials), and the ServiceMonitor scrapes with the Secret the user creates."""
    run = secrets_home / "run"
    ca = trustme.CA()
    run.mkdir()
    ca.cert_pem.write_to_path(run / "ca.pem")
    leaf = ca.issue_cert("registry-slo")
    leaf.cert_chain_pems[0].write_to_path(run / "server.pem")
    leaf.private_key_pem.write_to_path(run / "server.key")
    tls: dict[str, Any] = {"cert_file": "server.pem", "key_file": "server.key",
                           "client_auth_type": client_auth}
    if client_auth != "NoClientCert":
        tls["client_ca_file"] = "ca.pem"
    web: dict[str, Any] = {"tls_server_config": tls}
    if users:
        web["basic_auth_users"] = {"prometheus": "$2y$10$" + "a" * 53}
    (run / "web.yml").write_text(yaml.safe_dump(web))
    config = tmp_path / "regions.yaml"
    config.write_text(yaml.safe_dump({
        "web_config_file": str(run / "web.yml"),
        "regions": [{"name": "primary", "url": "https://primary.example.com"}]}))
    out = tmp_path / "k8s"
    kubernetes.generate(load_config(config), config.read_text(), out)
    docs = kustomize(out / "overlays" / "primary")
    for doc in docs:
        validate(doc)
    kinds = by_kind(docs)
    (container,) = kinds["Deployment"]["spec"]["template"]["spec"]["containers"]
    mounts = {m["mountPath"] for m in container["volumeMounts"] if m["name"] == "secrets"}
    wanted = {"web.yml", "server.pem", "server.key"} | (
        {"ca.pem"} if client_auth != "NoClientCert" else set())
    assert mounts == {str(run / name) for name in wanted}
    for check in ("livenessProbe", "readinessProbe", "startupProbe"):
        if users:
            assert container[check]["tcpSocket"] == {"port": "http"}
        else:
            assert container[check]["httpGet"]["scheme"] == "HTTPS"
    (endpoint,) = kinds["ServiceMonitor"]["spec"]["endpoints"]
    assert endpoint["scheme"] == "https"
    assert endpoint["tlsConfig"]["ca"]["secret"] == {
        "name": kubernetes.SCRAPE_SECRET, "key": "ca.crt"}
    assert ("keySecret" in endpoint["tlsConfig"]) == (client_auth != "NoClientCert")
    assert ("basicAuth" in endpoint) == users
    readme = (out / "README.md").read_text()
    assert kubernetes.SCRAPE_SECRET in readme


@given(st.from_regex(r"[a-z0-9][a-z0-9._-]{0,62}", fullmatch=True))
def test_overlay_names_are_dns_labels(region: str) -> None:
    name = kubernetes.overlay_name(region)
    assert DNS_LABEL.fullmatch(name) or DNS_LABEL.fullmatch(f"x{name}")
    assert 0 < len(name) <= 32
    # A name changed on the way carries a hash of the original, so two regions never meet.
    assert name == region or re.search(r"-[0-9a-f]{6}$", name)


@pytest.fixture
def two_regions(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    require_binary("docker-registry")
    with LocalRegistry() as registry:
        config = tmp_path / "regions.yaml"
        config.write_text(yaml.safe_dump({
            "listen": "127.0.0.1:9731",
            "defaults": {"probe": {"interval": "2s", "timeout": "2s", "blob_size": "64KiB"}},
            "regions": [
                {"name": "here", "url": registry.url, "probe": {"enabled": ["pull", "auth"]}},
                # Nothing listens there: probing it would show as failures.
                {"name": "elsewhere", "url": f"http://127.0.0.1:{free_port()}",
                 "probe": {"enabled": ["pull", "auth"]}},
            ],
            "slos": [{"name": "pulls", "sli": {"kind": "probe_success", "probe": "pull"},
                      "objective": 99}],
        }))
        yield config, registry.url


def test_the_pod_command_serves_its_own_region_only(
    tmp_path: Path, two_regions: tuple[Path, str]
) -> None:
    """The rendered Deployment's args and env, run as the container runs them; the only
    changes are the mount points (temporary directories) and the listen address (a free
    loopback port instead of the pod's 0.0.0.0)."""
    config, _ = two_regions
    out = tmp_path / "k8s"
    kubernetes.generate(load_config(config), config.read_text(), out)
    docs = by_kind(kustomize(out / "overlays" / "here"))
    pod = docs["Deployment"]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    etc = tmp_path / "etc"
    etc.mkdir()
    (etc / kubernetes.CONFIG_KEY).write_text(docs["ConfigMap"]["data"][kubernetes.CONFIG_KEY])
    args = [a.replace(mounts["config"], str(etc)) for a in container["args"]]
    assert args[:3] == ["serve", "--config", str(etc / kubernetes.CONFIG_KEY)]
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env["REGISTRY_SLO_LISTEN"].startswith("0.0.0.0:")
    env["REGISTRY_SLO_LISTEN"] = f"127.0.0.1:{free_port()}"
    assert env["REGISTRY_SLO_STATE_DIR"] == mounts["state"]
    env["REGISTRY_SLO_STATE_DIR"] = str(tmp_path / "state")
    environ = {"PATH": str(Path(sys.executable).parent) + ":/usr/bin:/bin",
               "HOME": str(tmp_path), **env}
    serve = ServeProcess(Path(args[2]), tmp_path / "serve.log", env=environ, args=args[3:])
    try:
        deadline = 60.0
        step = 0.2
        while httpx.get(f"{serve.base}/readyz", timeout=2).status_code != 200:
            assert serve.proc.poll() is None and deadline > 0, serve.tail()
            deadline -= step
            time.sleep(step)
        metrics = httpx.get(f"{serve.base}/metrics", timeout=5).text
        probes = set(re.findall(r'registry_slo_probe_success\{[^}]*region="([^"]+)"',
                                metrics))
        assert probes == {"here"}, serve.tail()
        assert 'region="elsewhere"' not in metrics
        slos = httpx.get(f"{serve.base}/api/v1/slo", timeout=5).json()
        assert {s["region"] for s in slos["slos"]} == {"here"}
        assert list((tmp_path / "state").iterdir()), "the state directory is used"
    finally:
        serve.stop()


def test_a_removed_region_loses_its_overlay(tmp_path: Path) -> None:
    settings = load_config(EXAMPLE)
    out = tmp_path / "k8s"
    kubernetes.generate(settings, EXAMPLE.read_text(), out)
    fewer = copy.deepcopy(yaml.safe_load(EXAMPLE.read_text()))
    fewer["regions"] = [r for r in fewer["regions"] if r["name"] != "ap-south-cache"]
    smaller = tmp_path / "fewer.yaml"
    smaller.write_text(yaml.safe_dump(fewer))
    kubernetes.generate(load_config(smaller), smaller.read_text(), out)
    assert not list((out / "overlays").glob("ap-south-cache/*"))
    assert kubernetes.check(load_config(smaller), smaller.read_text(), out) == []


@st.composite
def deployments(draw: st.DrawFn) -> dict[str, Any]:
    """A configuration's regions, secrets and listeners, drawn for the manifests: region
    names from the whole alphabet a region name allows, mirrors and caches, passwords
    from files or env, CA files, webhook endpoints with a token file or env."""
    names = draw(st.lists(st.from_regex(r"[a-z0-9][a-z0-9._-]{0,62}", fullmatch=True),
                          min_size=1, max_size=4, unique=True))
    regions = []
    for i, name in enumerate(names):
        scheme = draw(st.sampled_from(["http", "https"]))
        region: dict[str, Any] = {"name": name, "url": f"{scheme}://127.0.0.1:{5000 + i}",
                                  "probe": {"enabled": ["pull", "auth"]}}
        role = draw(st.sampled_from(["primary", "mirror", "cache"])) if i else "primary"
        if role == "mirror":
            region["replicates_from"] = names[0]
        elif role == "cache":
            region["pull_through_cache_of"] = names[0]
            region["probe"]["enabled"] = ["pull", "auth", "cache"]
        auth = draw(st.sampled_from(["none", "file", "env"]))
        if auth != "none":
            region["auth"] = {"type": "basic", "username": "prober", f"password_{auth}": i}
        if scheme == "https" and draw(st.booleans()):
            region["tls"] = {"ca_file": i}
        regions.append(region)
    hooks = draw(st.lists(st.sampled_from(names), unique=True, max_size=len(names)))
    ports = draw(st.lists(st.integers(1024, 65535), min_size=2, max_size=2, unique=True))
    return {
        "listen": f"127.0.0.1:{ports[0]}",
        "regions": regions,
        "ingest": {"notifications": {
            "listen": f"127.0.0.1:{ports[1]}",
            **({draw(st.sampled_from(["bearer_token_file", "bearer_token_env"])): "token"}
               if hooks else {}),
            "endpoints": [{"name": f"hook-{i}", "region": n, "format": "distribution"}
                          for i, n in enumerate(hooks)],
        }},
        "slos": [{"name": "pulls", "sli": {"kind": "probe_success", "probe": "pull"},
                  "objective": 99}],
        "prometheus": {"scrape_interval": f"{draw(st.integers(10, 75))}s"},
    }


def _materialize(drawn: dict[str, Any], home: Path) -> tuple[dict[str, Any], dict[str, str]]:
    """Secret files under ``home`` and env variables for the drawn placeholders."""
    config = copy.deepcopy(drawn)
    env: dict[str, str] = {}
    secrets = home / "secrets"
    secrets.mkdir()

    def file(name: str) -> str:
        path = secrets / name
        path.write_text(f"value-of-{name}")
        return str(path)

    for region in config["regions"]:
        auth = region.get("auth", {})
        if "password_file" in auth:
            auth["password_file"] = file(f"password-{auth['password_file']}")
        if "password_env" in auth:
            auth["password_env"] = variable = f"PASSWORD_{auth['password_env']}"
            env[variable] = f"value-of-{variable}"
        if "tls" in region:
            region["tls"]["ca_file"] = file(f"ca-{region['tls']['ca_file']}.pem")
    notifications = config["ingest"]["notifications"]
    if "bearer_token_file" in notifications:
        notifications["bearer_token_file"] = file("webhook-token")
    if "bearer_token_env" in notifications:
        notifications["bearer_token_env"] = "WEBHOOK_TOKEN"
        env["WEBHOOK_TOKEN"] = "value-of-WEBHOOK_TOKEN"
    return config, env


def _expected_secrets(config: dict[str, Any], name: str) -> tuple[set[str], set[str]]:
    """The files and variables region ``name``'s exporter reads secrets from."""
    by_name = {r["name"]: r for r in config["regions"]}
    clients = [by_name[name]]
    if "pull_through_cache_of" in by_name[name]:
        clients.append(by_name[by_name[name]["pull_through_cache_of"]])
    files, envs = set(), set()
    for client in clients:
        auth = client.get("auth", {})
        files |= {auth["password_file"]} if "password_file" in auth else set()
        envs |= {auth["password_env"]} if "password_env" in auth else set()
        files |= {client["tls"]["ca_file"]} if "tls" in client else set()
    notifications = config["ingest"]["notifications"]
    if any(e["region"] == name for e in notifications["endpoints"]):
        files |= {notifications.get("bearer_token_file")} - {None}
        envs |= {notifications.get("bearer_token_env")} - {None}
    return files, envs


@fuzz_settings(default=20)
@given(deployments())
# A region named "n": YAML 1.1 readers (kustomize) took the unquoted name for false.
@example({"listen": "127.0.0.1:1024",
          "regions": [{"name": "n", "url": "http://127.0.0.1:5000",
                       "probe": {"enabled": ["pull", "auth"]}}],
          "ingest": {"notifications": {"listen": "127.0.0.1:1025", "endpoints": []}},
          "slos": [{"name": "pulls", "sli": {"kind": "probe_success", "probe": "pull"},
                    "objective": 99}],
          "prometheus": {"scrape_interval": "10s"}})
def test_every_valid_configuration_gives_valid_overlays(drawn: dict[str, Any]) -> None:
    """For any drawn configuration: every overlay renders and validates, no two overlays
    create the same object or select each other's pods, and each mounts exactly the
    secrets its region's exporter reads."""
    with tempfile.TemporaryDirectory(dir=SECRETS_HOME, prefix="registry-slo-test-") as tmp:
        home = Path(tmp)
        config, env = _materialize(drawn, home)
        with mock.patch.dict(os.environ, env):
            settings = Settings.model_validate(config)
        text = yaml.safe_dump(config)
        out = home / "k8s"
        kubernetes.generate(settings, text, out)
        seen: set[tuple[str, str]] = set()
        pods: dict[str, dict[str, str]] = {}
        selectors: dict[str, dict[str, str]] = {}
        for region in config["regions"]:
            overlay = kubernetes.overlay_name(region["name"])
            docs = kustomize(out / "overlays" / overlay)
            for doc in docs:
                validate(doc)
                key = (doc["kind"], doc["metadata"]["name"])
                assert key not in seen, key
                seen.add(key)
            found = by_kind(docs)
            pod = found["Deployment"]["spec"]["template"]
            pods[overlay] = pod["metadata"]["labels"]
            selectors[overlay] = found["Service"]["spec"]["selector"]
            (container,) = pod["spec"]["containers"]
            assert f"--region={region['name']}" in container["args"]
            files, envs = _expected_secrets(config, region["name"])
            assert {m["mountPath"] for m in container["volumeMounts"]
                    if m["name"] == "secrets"} == files
            assert {e["name"] for e in container["env"] if "valueFrom" in e} == envs
            rendered = yaml.safe_dump_all(docs)
            assert "value-of-" not in rendered
        for overlay, selector in selectors.items():
            assert [o for o, labels in pods.items() if _matches(selector, labels)] == [overlay]


def test_a_secret_inside_a_pod_volume_is_refused(tmp_path: Path) -> None:
    """The pod mounts /tmp (and the config and state directories) whole: a secret file
    there cannot be mounted at its own path, and generation says so."""
    assert tmp_path.is_relative_to("/tmp")
    secret = tmp_path / "prober-password"
    secret.write_text("x")
    config = tmp_path / "regions.yaml"
    config.write_text(yaml.safe_dump({"regions": [{
        "name": "a", "url": "http://127.0.0.1:5000",
        "auth": {"type": "basic", "username": "u", "password_file": str(secret)}}]}))
    with pytest.raises(GenerationError, match=rf"{secret}: in a pod, /tmp is a volume"):
        kubernetes.render(load_config(config), config.read_text())
