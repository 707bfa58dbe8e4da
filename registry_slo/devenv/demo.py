"""The quick start: local registries plus an exporter probing them.

Five regions, all on 127.0.0.1: ``local`` (open), ``local-auth`` (htpasswd),
``local-mirror`` (kept in sync with ``local`` by a ``skopeo sync`` loop, for replication
lag), ``local-cache`` (a pull-through cache of ``local``) and ``local-down`` (nothing
listens: what a failing region looks like).
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import sys
import tempfile
from pathlib import Path
from typing import Any

import yaml

from registry_slo.config import load_config
from registry_slo.devenv.mirror import SkopeoSyncLoop
from registry_slo.devenv.registry import HtpasswdAuth, LocalRegistry, free_port

__all__ = ["run_demo"]

SYNC_PERIOD = 10.0
"""Seconds between two syncs of the demo mirror."""


DEMO_SLOS: list[dict[str, Any]] = [
    {"name": "pull-availability", "description": "Image pulls succeed",
     "sli": {"kind": "probe_success", "probe": "pull"}, "objective": 99.9},
    {"name": "push-availability", "description": "Image pushes succeed",
     "sli": {"kind": "probe_success", "probe": "push"}, "objective": 99.5},
    {"name": "pull-latency", "description": "Image pulls finish within 2s",
     "sli": {"kind": "probe_latency", "probe": "pull", "threshold": "2s"}, "objective": 99},
    {"name": "auth-success", "description": "The prober obtains credentials",
     "sli": {"kind": "auth_success"}, "objective": 99.5},
    {"name": "replication-freshness", "description": "The mirror is at most 30s behind",
     "sli": {"kind": "replication_lag", "threshold": "30s"}, "objective": 99},
    # From the registries' own logs: the demo's users are the skopeo sync loop.
    {"name": "pull-traffic", "description": "Pulls users make are served",
     "sli": {"kind": "traffic_success", "operations": ["pull_manifest", "pull_blob"]},
     "objective": 99.9},
    {"name": "push-traffic-latency", "description": "Manifest pushes users make take 1s or less",
     "sli": {"kind": "traffic_latency", "operations": ["push_manifest"], "threshold": "1s"},
     "objective": 99},
]
"""The SLOs of the quick start: the status page at ``/`` shows their budgets."""


def demo_config(listen: str, urls: dict[str, str], password_file: Path,
                cache_debug_url: str, logs: dict[str, Path],
                state_dir: Path | None = None) -> dict[str, Any]:
    """The demo's configuration (``logs``: region → the registry's JSON log file;
    ``state_dir``: where the SLO windows and ingest checkpoints are kept)."""
    ingest: dict[str, Any] = {
        "logs": [
            {"name": f"{region}-log", "region": region, "format": "distribution",
             "paths": [str(path)], "read_from": "beginning"}
            for region, path in logs.items()
        ],
    }
    if state_dir is not None:
        ingest["checkpoint_dir"] = str(state_dir / "checkpoints")
    return {
        "listen": listen,
        **({"state_dir": str(state_dir)} if state_dir is not None else {}),
        "defaults": {"probe": {"interval": "15s", "timeout": "5s", "blob_size": "1MiB"}},
        "replication": {"heartbeat_interval": "5s"},
        "regions": [
            {"name": "local", "url": urls["local"]},
            {
                "name": "local-auth",
                "url": urls["local-auth"],
                "auth": {
                    "type": "basic",
                    "username": "prober",
                    "password_file": str(password_file),
                },
            },
            {"name": "local-mirror", "url": urls["local-mirror"], "replicates_from": "local",
             "probe": {"enabled": ["pull", "auth"]}},
            {"name": "local-cache", "url": urls["local-cache"], "pull_through_cache_of": "local",
             "debug_vars_url": f"{cache_debug_url}/debug/vars"},
            # Nothing listens here: shows what a region that is down looks like.
            {"name": "local-down", "url": urls["local-down"]},
        ],
        "ingest": ingest,
        "slos": DEMO_SLOS,
    }


def run_demo(listen: str = "127.0.0.1:9731", workdir: Path | None = None) -> int:
    """Start local registries, a sync loop and an exporter; serve until interrupted."""
    from registry_slo.exporter import Exporter, ExporterFailed

    workdir = workdir or Path(tempfile.mkdtemp(prefix="registry-slo-demo-"))
    workdir.mkdir(parents=True, exist_ok=True)
    password = secrets.token_urlsafe(12)
    password_file = workdir / "prober.password"
    password_file.write_text(password + "\n", encoding="utf-8")
    password_file.chmod(0o600)

    def registry(name: str, **options: Any) -> LocalRegistry:
        return LocalRegistry(storage_dir=workdir / f"storage-{name}",
                             log_path=workdir / f"{name}.log", **options)

    with contextlib.ExitStack() as stack:
        local = stack.enter_context(registry("local"))
        authed = stack.enter_context(
            registry("local-auth", auth=HtpasswdAuth({"prober": password})))
        mirror = stack.enter_context(registry("local-mirror"))
        cache = stack.enter_context(
            registry("local-cache", proxy_remote_url=local.url, debug_metrics=True))
        urls = {"local": local.url, "local-auth": authed.url, "local-mirror": mirror.url,
                "local-cache": cache.url, "local-down": f"http://127.0.0.1:{free_port()}"}
        config_path = workdir / "regions.yaml"
        config_path.write_text(
            "# Written by `registry-slo demo`.\n" + yaml.safe_dump(
                demo_config(listen, urls, password_file, cache.debug_url,
                            {"local": local.log_path, "local-mirror": mirror.log_path},
                            workdir / "state"), sort_keys=False),
            encoding="utf-8",
        )
        settings = load_config(config_path)
        sync = SkopeoSyncLoop(local, mirror, "registry-slo/probe",
                              settings.replication.tag, SYNC_PERIOD)
        sync.start()
        stack.callback(sync.stop)
        base = f"http://{listen}"
        print(
            f"""
registry-slo demo
  registries   local        {local.url}
               local-auth   {authed.url}  (htpasswd, user prober)
               local-mirror {mirror.url}  (skopeo sync from local every {SYNC_PERIOD:g}s)
               local-cache  {cache.url}  (pull-through cache of local)
               local-down   (nothing listening: probes fail with reason=connect)
  config       {config_path}
  exporter     {base}/          status page: probes, SLOs, error budgets, burn rates
               {base}/metrics   Prometheus metrics
               {base}/api/v1/slo  SLO windows and burn rates (JSON)
               {base}/readyz    ready once every probe has run
  logs         {workdir}

Try:  curl -s {base}/metrics | grep -E 'registry_slo_(probe_success|replication_lag_seconds)'
      registry-slo probe --once --config {config_path}
Ctrl-C stops the exporter and the registries.
""",
            flush=True,
        )
        try:
            asyncio.run(Exporter(settings).run())
        except ExporterFailed as exc:
            print(f"registry-slo: stopped: {exc}", file=sys.stderr)
            return 1
    return 0
