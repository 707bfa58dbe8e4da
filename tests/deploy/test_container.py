"""deploy/container/Dockerfile, checked where no container engine exists: what it
declares (stages, a fixed non-root user, the health check, labels, the state volume),
that its ignore file sends what the build stage copies, and what it installs — the
project's wheel, built as the build stage builds it, installed on its own and run as
the image runs it: ``serve`` answers ``/healthz`` and writes nothing but
``$STATE_DIRECTORY``, so a read-only root filesystem holds."""

from __future__ import annotations

import fnmatch
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

from harness.serve import ServeProcess

from registry_slo.devenv import free_port

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO / "deploy" / "container" / "Dockerfile"
IGNORE = REPO / "deploy" / "container" / "Dockerfile.dockerignore"


def _instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    joined: list[str] = []
    pending = ""
    for line in DOCKERFILE.read_text().splitlines():
        if line.lstrip().startswith("#") and not pending:
            continue
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        joined.append(pending + line)
        pending = ""
    out = []
    for line in joined:
        if line.strip():
            word, _, rest = line.strip().partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def test_the_dockerfile_declares_what_the_image_promises() -> None:
    steps = _instructions()
    stages = [i for i, (word, _) in enumerate(steps) if word == "FROM"]
    assert len(stages) == 2 and " AS build" in steps[stages[0]][1]
    final = steps[stages[1]:]
    words = [word for word, _ in final]
    user = next(args for word, args in final if word == "USER")
    uid, gid = (int(part) for part in user.split(":"))
    assert uid > 0 and gid > 0  # fixed and not root: runAsNonRoot can check it
    health = next(args for word, args in final if word == "HEALTHCHECK")
    assert "/healthz" in health
    labels = " ".join(args for word, args in final if word == "LABEL")
    for key in ("title", "description", "version", "licenses"):
        assert f"org.opencontainers.image.{key}=" in labels
    env = " ".join(args for word, args in final if word == "ENV")
    volume = json.loads(next(args for word, args in final if word == "VOLUME"))
    assert f"STATE_DIRECTORY={volume[0]}" in env and "PYTHONDONTWRITEBYTECODE=1" in env
    run = " ".join(args for word, args in final if word == "RUN")
    for tool in ("gcc", "build-essential", "apt-get install"):
        assert tool not in run  # no build tools in the runtime stage
    assert "--no-index" in run and "from=build" in run
    assert words.index("USER") > words.index("RUN")
    assert json.loads(next(a for w, a in final if w == "ENTRYPOINT"))[0].endswith(
        "/bin/registry-slo")


def test_the_ignore_file_sends_what_the_build_stage_copies() -> None:
    patterns = [p for p in IGNORE.read_text().splitlines() if p and not p.startswith("#")]

    def sent(path: str) -> bool:
        keep = True
        for pattern in patterns:
            negate = pattern.startswith("!")
            bare = pattern.lstrip("!").rstrip("/")
            for form in {bare, bare.replace("**/", "")}:  # "**/" may match no directory
                if fnmatch.fnmatch(path, form) or fnmatch.fnmatch(path, form + "/*"):
                    keep = negate
        return keep

    copied = [args.split()[0] for word, args in _instructions() if word == "COPY"
              and "--from" not in args]
    assert copied == ["pyproject.toml", "registry_slo"]
    for source in [*copied, "README.md"]:
        assert sent(source), source
    for path in ("registry_slo/exporter.py", "registry_slo/oci/_client.py"):
        assert sent(path), path
    for path in ("tests/conftest.py", ".venv/bin/python", "bench/scale.py", "alerts/README.md",
                 "registry_slo/__pycache__/cli.cpython-311.pyc"):
        assert not sent(path), path


def test_the_wheel_it_installs_serves_and_writes_only_its_state(tmp_path: Path) -> None:
    wheels = tmp_path / "wheels"
    # As the build stage does (with build isolation: pyproject's setuptools).
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet",
                            "--wheel-dir", str(wheels), str(REPO)], timeout=600,
                           capture_output=True, text=True, check=False)
    assert built.returncode == 0, built.stderr[-3000:]
    (wheel,) = wheels.glob("registry_slo-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "registry_slo/exporter.py" in names
    assert not [n for n in names if n.startswith(("tests/", "bench/"))], names
    # Installed on its own (its dependencies come from this venv, as from /wheels there).
    root = tmp_path / "opt"
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--quiet",
                    "--target", str(root), str(wheel)], check=True, timeout=300,
                   capture_output=True)
    before = sorted(p.relative_to(root) for p in root.rglob("*"))
    state = tmp_path / "state"
    state.mkdir()
    port = free_port()
    config = tmp_path / "regions.yaml"
    config.write_text(  # a region nobody answers at: probes fail, the exporter runs
        f"listen: 127.0.0.1:{port}\n"
        'regions: [{name: a, url: "http://127.0.0.1:1", probe: {interval: 5s, timeout: 2s}}]\n'
        "slos: [{name: pulls, sli: {kind: probe_success, probe: pull}, objective: 99}]\n")
    env = {**os.environ, "PYTHONPATH": str(root), "STATE_DIRECTORY": str(state),
           "PYTHONDONTWRITEBYTECODE": "1", "HOME": str(tmp_path / "no-home")}
    found = subprocess.run([sys.executable, "-c", "import registry_slo as r; print(r.__file__)"],
                           env=env, cwd=tmp_path, capture_output=True, text=True, check=True)
    assert Path(found.stdout.strip()).parent == root / "registry_slo"  # the installed copy
    exporter = ServeProcess(config, tmp_path / "exporter.log", timeout=60, env=env,
                            cwd=tmp_path)
    exporter.stop()  # SIGTERM, and a clean exit
    assert sorted(p.relative_to(root) for p in root.rglob("*")) == before  # nothing written
    assert any(state.iterdir())  # the SLO store went where the volume is
    assert not (tmp_path / "no-home").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["wheels", "opt", "state", "regions.yaml", "exporter.log"])
