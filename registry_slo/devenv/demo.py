"""The quick start: local registries plus an exporter probing them."""

from __future__ import annotations

import asyncio
import secrets
import tempfile
from pathlib import Path

import yaml

from registry_slo.config import load_config
from registry_slo.devenv.registry import HtpasswdAuth, LocalRegistry, free_port

__all__ = ["run_demo"]


def write_demo_config(
    workdir: Path, listen: str, registries: dict[str, str], password_file: Path, down_url: str
) -> Path:
    """Write the demo's configuration file and return its path."""
    config = {
        "listen": listen,
        "defaults": {"probe": {"interval": "15s", "timeout": "5s", "blob_size": "1MiB"}},
        "regions": [
            {"name": "local", "url": registries["local"]},
            {
                "name": "local-auth",
                "url": registries["local-auth"],
                "auth": {
                    "type": "basic",
                    "username": "prober",
                    "password_file": str(password_file),
                },
            },
            # Nothing listens here: shows what a region that is down looks like.
            {"name": "local-down", "url": down_url},
        ],
    }
    path = workdir / "regions.yaml"
    path.write_text(
        "# Written by `registry-slo demo`.\n" + yaml.safe_dump(config, sort_keys=False),
        encoding="utf-8",
    )
    return path


def run_demo(listen: str = "127.0.0.1:9731", workdir: Path | None = None) -> int:
    """Start two local registries and an exporter; serve until interrupted."""
    from registry_slo.exporter import Exporter

    workdir = workdir or Path(tempfile.mkdtemp(prefix="registry-slo-demo-"))
    workdir.mkdir(parents=True, exist_ok=True)
    password = secrets.token_urlsafe(12)
    password_file = workdir / "prober.password"
    password_file.write_text(password + "\n", encoding="utf-8")
    password_file.chmod(0o600)
    plain = LocalRegistry(storage_dir=workdir / "storage-local", log_path=workdir / "local.log")
    authed = LocalRegistry(
        auth=HtpasswdAuth({"prober": password}),
        storage_dir=workdir / "storage-local-auth",
        log_path=workdir / "local-auth.log",
    )
    with plain, authed:
        config_path = write_demo_config(
            workdir,
            listen,
            {"local": plain.url, "local-auth": authed.url},
            password_file,
            f"http://127.0.0.1:{free_port()}",
        )
        settings = load_config(config_path)
        base = f"http://{listen}"
        print(
            f"""
registry-slo demo
  registries   local      {plain.url}
               local-auth {authed.url}  (htpasswd, user prober)
               local-down (nothing listening: probes fail with reason=connect)
  config       {config_path}
  exporter     {base}/metrics   Prometheus metrics
               {base}/readyz    ready once every probe has run
  logs         {workdir}

Try:  curl -s {base}/metrics | grep registry_slo_probe_success
      registry-slo probe --once --config {config_path}
Ctrl-C stops the exporter and the registries.
""",
            flush=True,
        )
        asyncio.run(Exporter(settings).run())
    return 0
