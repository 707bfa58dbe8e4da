"""deploy/systemd/registry-slo.service passes the real ``systemd-analyze``: ``verify``
(syntax, directives, the ExecStart binary) and ``security --offline=yes`` (the exposure
score, at most :data:`MAX_EXPOSURE`), and what it runs is a command the CLI accepts."""

from __future__ import annotations

import shlex
import subprocess
import sys
from pathlib import Path

from conftest import require_binary

UNIT = Path(__file__).resolve().parents[2] / "deploy" / "systemd" / "registry-slo.service"
INSTALLED = "/opt/registry-slo/bin/registry-slo"
MAX_EXPOSURE = 2.0
"""systemd's scale: 0 (locked down) to 10 (unprotected); 2.0 and below reads "OK"."""


def _unit_here(tmp_path: Path) -> Path:
    """The unit with ExecStart pointing at this venv's registry-slo (verify checks that
    the binary exists)."""
    here = Path(sys.executable).parent / "registry-slo"
    text = UNIT.read_text()
    assert INSTALLED in text
    path = tmp_path / "registry-slo.service"
    path.write_text(text.replace(INSTALLED, str(here)))
    return path


def test_the_unit_verifies(tmp_path: Path) -> None:
    analyze = require_binary("systemd-analyze")
    done = subprocess.run([analyze, "verify", str(_unit_here(tmp_path))],
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0 and not done.stderr.strip(), done.stderr


def test_the_unit_is_locked_down(tmp_path: Path) -> None:
    analyze = require_binary("systemd-analyze")
    done = subprocess.run(
        [analyze, "security", "--offline=yes", f"--threshold={int(MAX_EXPOSURE * 10)}",
         str(_unit_here(tmp_path))],
        capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr
    overall = next(line for line in done.stdout.splitlines() if "Overall exposure" in line)
    score = float(overall.split(":")[1].split()[0])
    assert score <= MAX_EXPOSURE, overall
    for directive in ("DynamicUser=yes", "StateDirectory=registry-slo", "ProtectSystem=strict",
                      "NoNewPrivileges=yes", "Restart=on-failure"):
        assert directive in UNIT.read_text(), directive


def test_its_command_is_one_the_cli_accepts(tmp_path: Path) -> None:
    line = next(line for line in UNIT.read_text().splitlines() if line.startswith("ExecStart="))
    argv = shlex.split(line.removeprefix("ExecStart="))
    assert argv[0] == INSTALLED and argv[1] == "serve"
    config = tmp_path / "regions.yaml"
    config.write_text('regions: [{name: a, url: "http://127.0.0.1:5000"}]\n')
    argv[argv.index("--config") + 1] = str(config)
    cli = Path(sys.executable).parent / "registry-slo"
    done = subprocess.run([str(cli), "validate", *argv[2:]], capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.returncode == 0, done.stderr
