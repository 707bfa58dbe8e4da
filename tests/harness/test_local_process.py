"""`LocalProcess`, the lifecycle under `LocalRegistry` and `LocalPrometheus`, proven on a
stand-in component: Python's own ``http.server``."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path
from typing import ClassVar

import httpx
import pytest

from registry_slo.devenv import LocalRegistry
from registry_slo.devenv import _process as process_module
from registry_slo.devenv._process import LocalProcess, free_port

from . import require_binary

_SERVER = """
import http.server, json, sys, time
mode = json.load(open(sys.argv[1]))["mode"]
print("fake starting in mode", mode, file=sys.stderr, flush=True)
if mode == "exit":
    sys.exit(3)
if mode == "hang":
    time.sleep(60)
http.server.test(http.server.SimpleHTTPRequestHandler, port=int(sys.argv[2]), bind="127.0.0.1")
"""


class FakeStartError(RuntimeError):
    """The fake exited or did not answer in time."""


class FakeServer(LocalProcess):
    """``python -c _SERVER fake.json PORT``: serves its work dir, or exits, or hangs."""

    _name: ClassVar[str] = "fake"
    _start_error: ClassVar[type[RuntimeError]] = FakeStartError
    _config_name: ClassVar[str] = "fake.json"
    _log_name: ClassVar[str] = "fake.log"
    _stop_grace: ClassVar[float] = 2.0

    def __init__(
        self,
        mode: str = "serve",
        *,
        log_path: Path | None = None,
        keep_workdir: bool = False,
        start_timeout: float = 10.0,
    ) -> None:
        super().__init__(log_path=log_path, keep_workdir=keep_workdir, start_timeout=start_timeout)
        self.mode = mode

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _binary(self) -> Path:
        return Path(sys.executable)

    def _allocate_ports(self) -> None:
        self._port = free_port()

    def _prepare(self) -> None:
        self.config_path.write_text(json.dumps({"mode": self.mode}))

    def _command(self) -> list[str]:
        return [sys.executable, "-c", _SERVER, str(self.config_path), str(self.port)]

    def _readiness_urls(self) -> list[str]:
        return [f"{self.url}/"]


def test_lifecycle_start_restart_kill_stop() -> None:
    fake = FakeServer()
    assert repr(fake) == "<FakeServer not started>"
    assert fake.log_tail() == "" and fake.pid is None and not fake.running
    with pytest.raises(RuntimeError, match="fake has not been started"):
        _ = fake.port
    with pytest.raises(RuntimeError, match="fake has not been started"):
        _ = fake.workdir

    with fake:
        assert fake.running and fake in process_module._LIVE
        assert repr(fake) == f"<FakeServer {fake.url}>"
        assert fake.workdir.name.startswith("registry-slo-fake-")
        assert fake.config_path == fake.workdir / "fake.json"
        assert fake.log_path == fake.workdir / "fake.log"
        assert "fake.json" in httpx.get(f"{fake.url}/", trust_env=False).text
        assert "GET / HTTP" in fake.log_tail()
        port, pid, workdir = fake.port, fake.pid, fake.workdir

        assert fake.restart() is fake
        assert (fake.port, fake.workdir) == (port, workdir) and fake.pid != pid
        assert fake.log_tail(100).count("fake starting") == 2  # the log is appended to

        fake.kill()
        assert not fake.running and fake.pid is None
        assert fake not in process_module._LIVE and workdir.exists()
        assert fake.start() is fake and fake.port == port and fake.running

    assert not fake.running and not workdir.exists()
    with pytest.raises(RuntimeError, match="fake has not been started"):
        _ = fake.port


def test_keep_workdir_and_a_log_outside_it(tmp_path: Path) -> None:
    log = tmp_path / "logs" / "fake.log"
    with FakeServer(log_path=log, keep_workdir=True) as fake:
        workdir = fake.workdir
        assert fake.log_path == log
    try:
        assert (workdir / "fake.json").exists() and "fake starting" in log.read_text()
        assert "fake starting" in fake.log_tail()  # still readable after stop
    finally:
        shutil.rmtree(workdir)


def test_an_exit_during_start_reports_the_status_and_log_tail() -> None:
    fake = FakeServer("exit")
    with pytest.raises(FakeStartError, match="fake exited with status 3") as caught:
        fake.start()
    assert "log tail:\nfake starting in mode exit" in str(caught.value)
    assert not fake.running and fake not in process_module._LIVE
    fake.stop()


def test_a_start_timeout_reports_the_url_and_stops_the_process() -> None:
    fake = FakeServer("hang", start_timeout=0.3)
    with pytest.raises(FakeStartError, match=r"did not answer GET http://127\.0\.0\.1:\d+/ "
                                             r"within 0\.3s; log tail:\nfake starting"):
        fake.start()
    assert not fake.running
    fake.stop()


def test_registry_debug_url_is_forgotten_with_the_work_dir() -> None:
    require_binary("docker-registry")
    reg = LocalRegistry(debug_metrics=True)
    with reg:
        assert httpx.get(f"{reg.debug_url}/metrics", trust_env=False).status_code == 200
    with pytest.raises(RuntimeError, match="not started"):
        _ = reg.debug_url
    assert repr(reg) == "<LocalRegistry not started auth=NoneType>"
