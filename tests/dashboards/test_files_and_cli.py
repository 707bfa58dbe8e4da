"""Writing, checking and regenerating dashboards/, and the CLI around it."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from registry_slo.cli import main
from registry_slo.config import Settings, load_config
from registry_slo.generate import GenerationError, dashboards

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "regions.yaml"
FILES = ["README.md", "registry-slo-debug.json", "registry-slo-executive.json",
         "registry-slo-oncall.json"]


@pytest.fixture(scope="module")
def example() -> Settings:
    return load_config(EXAMPLE)


def test_generation_is_deterministic(example: Settings) -> None:
    assert dashboards.render(example) == dashboards.render(load_config(EXAMPLE))
    assert sorted(dashboards.render(example)) == FILES


def test_generate_then_check(example: Settings, tmp_path: Path) -> None:
    written = dashboards.generate(example, tmp_path / "dashboards")
    assert sorted(p.name for p in written) == FILES
    out = tmp_path / "dashboards"
    assert dashboards.check(example, out) == []
    oncall = out / "registry-slo-oncall.json"
    doc = json.loads(oncall.read_text())
    doc["panels"][1]["title"] = "edited by hand"
    oncall.write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n")
    (out / "registry-slo-debug.json").unlink()
    differences = dashboards.check(example, out)
    assert differences[0] == "registry-slo-debug.json: missing"
    assert differences[1].startswith("registry-slo-oncall.json: differs at line ")
    assert "'\"title\": \"edited by hand\",'" in differences[1]
    assert len(differences) == 2


def test_generate_removes_what_it_wrote_before_and_keeps_other_files(
    example: Settings, tmp_path: Path
) -> None:
    dashboards.generate(example, tmp_path)
    stale = tmp_path / "registry-slo-old.json"
    stale.write_text((tmp_path / "registry-slo-debug.json").read_text())
    own = tmp_path / "my-dashboard.json"
    own.write_text('{"title": "mine"}\n')
    assert dashboards.check(example, tmp_path) == [
        "registry-slo-old.json: stale (no longer generated)"]
    dashboards.generate(example, tmp_path)
    assert not stale.exists()
    assert own.exists()


def test_generate_never_overwrites_a_file_it_did_not_write(
    example: Settings, tmp_path: Path
) -> None:
    (tmp_path / "registry-slo-oncall.json").write_text('{"title": "mine"}\n')
    with pytest.raises(GenerationError, match=r"registry-slo-oncall\.json exists and was not"):
        dashboards.generate(example, tmp_path)
    assert (tmp_path / "registry-slo-oncall.json").read_text() == '{"title": "mine"}\n'
    assert "registry-slo-oncall.json: exists but was not generated" in \
        dashboards.check(example, tmp_path)


def test_cli_writes_dashboards_next_to_out(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "alerts"
    args = ["generate", "--config", str(EXAMPLE), "--out", str(out)]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert f"{tmp_path / 'dashboards'}: wrote 4 file(s)" in printed
    assert sorted(p.name for p in (tmp_path / "dashboards").iterdir()) == FILES
    assert main([*args, "--check"]) == 0
    assert f"{tmp_path / 'dashboards'}: up to date" in capsys.readouterr().out
    (tmp_path / "dashboards" / "registry-slo-executive.json").unlink()
    assert main([*args, "--check"]) == 1
    err = capsys.readouterr().err
    assert f"{tmp_path / 'dashboards'} is not what {EXAMPLE} generates (1 difference(s))" \
        in err
    assert "registry-slo-executive.json: missing" in err
    assert f"run: registry-slo generate --config {EXAMPLE} --out {out}" in err


def test_cli_dashboards_option_and_opting_out(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out, boards = tmp_path / "rules-here", tmp_path / "grafana"
    assert main(["generate", "--config", str(EXAMPLE), "--out", str(out),
                 "--dashboards", str(boards)]) == 0
    assert (boards / "registry-slo-oncall.json").is_file()
    assert not (tmp_path / "dashboards").exists()
    only_rules = tmp_path / "only-rules"
    assert main(["generate", "--config", str(EXAMPLE), "--out", str(only_rules),
                 "--no-dashboards"]) == 0
    assert "dashboards" not in capsys.readouterr().out.replace(str(tmp_path), "")
    assert not (tmp_path / "dashboards").exists()
    assert main(["generate", "--config", str(EXAMPLE), "--out", str(only_rules),
                 "--no-dashboards", "--check"]) == 0


def test_cli_defaults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "examples").mkdir()
    shutil.copy(EXAMPLE, tmp_path / "examples" / "regions.yaml")
    monkeypatch.chdir(tmp_path)
    assert main(["generate", "--config", "examples/regions.yaml"]) == 0
    assert (tmp_path / "dashboards" / "registry-slo-debug.json").is_file()
    assert (tmp_path / "alerts" / "rules" / "slo-pull-availability.yml").is_file()


def test_the_repository_is_up_to_date() -> None:
    """What CI runs: the committed alerts/ and dashboards/ equal a fresh generation."""
    done = subprocess.run([sys.executable, "-m", "registry_slo", "generate", "--check",
                           "--config", "examples/regions.yaml"],
                          cwd=REPO, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert "dashboards: up to date with examples/regions.yaml" in done.stdout
