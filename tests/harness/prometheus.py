"""Run a real Prometheus server (Debian's ``prometheus``) locally, and query it.

`LocalPrometheus` writes its own ``prometheus.yml`` (the scrape jobs and rule files you
pass, intervals as short as you like), keeps its TSDB in a temporary directory it owns,
listens on ``127.0.0.1`` only, starts ``prometheus`` and waits until ``/-/ready``
answers. Small helpers query its HTTP API (``query``, ``query_range``, exemplars,
alerts, rule groups, targets) with httpx. It is used by the test-suite and benchmarks
wherever generated rules or dashboards must meet a real Prometheus.

Example::

    with LocalPrometheus(
        scrape_configs=[scrape_job("exporter", ["127.0.0.1:9731"])],
        rule_files=["alerts/rules/slo-pull-availability.yml"],
        scrape_interval=1, evaluation_interval=2,
    ) as prom:
        prom.wait_for_targets()
        for sample in prom.query('slo:current_burn_rate:ratio'):
            print(sample.labels["sloth_id"], sample.value)

Debian's package defaults to system paths and all interfaces; this class always passes
``--config.file``, ``--storage.tsdb.path`` and ``--web.listen-address=127.0.0.1:PORT``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import httpx
import yaml

from registry_slo.devenv._process import LocalProcess, find_binary, free_port

__all__ = [
    "PROMETHEUS_BIN_ENV",
    "PROMETHEUS_DEBIAN_PACKAGE",
    "InstantSample",
    "LocalPrometheus",
    "PrometheusQueryError",
    "PrometheusStartError",
    "RangeSeries",
    "prometheus_binary",
    "prometheus_duration",
    "scrape_job",
]

PROMETHEUS_BIN_ENV = "REGISTRY_SLO_PROMETHEUS_BIN"
"""Environment variable that overrides the path of the prometheus binary."""

PROMETHEUS_DEBIAN_PACKAGE = "prometheus"
"""Debian package that ships ``/usr/bin/prometheus`` (and ``promtool``)."""

_DEFAULT_BINARY = Path("/usr/bin/prometheus")


class PrometheusStartError(RuntimeError):
    """The process exited, or did not answer ``/-/ready`` in time."""


class PrometheusQueryError(RuntimeError):
    """The HTTP API answered with an error (a bad expression, a timeout ...).

    Attributes:
        error_type: the API's ``errorType`` (``bad_data``, ``execution``, ``timeout`` ...).
        expr: the expression or request concerned.
    """

    def __init__(self, message: str, error_type: str, expr: str) -> None:
        super().__init__(message)
        self.error_type = error_type
        self.expr = expr


@dataclass(frozen=True)
class InstantSample:
    """One series of an instant query: its labels and its value at ``timestamp``."""

    labels: dict[str, str]
    timestamp: float
    value: float


@dataclass(frozen=True)
class RangeSeries:
    """One series of a range query: its labels and ``(timestamp, value)`` points."""

    labels: dict[str, str]
    values: list[tuple[float, float]]


def prometheus_duration(seconds: float) -> str:
    """A duration as Prometheus configuration and PromQL write it: ``500ms``, ``15s``, ``2m``.

    Args:
        seconds: a positive number of seconds (rounded to whole milliseconds).

    Raises:
        ValueError: when ``seconds`` is not positive.
    """
    if not seconds > 0:
        raise ValueError(f"duration must be positive, not {seconds!r}")
    millis = round(seconds * 1000)
    if millis % 1000:
        return f"{millis}ms"
    secs = millis // 1000
    for unit, size in (("h", 3600), ("m", 60)):
        if secs % size == 0:
            return f"{secs // size}{unit}"
    return f"{secs}s"


def scrape_job(name: str, targets: Iterable[str], **options: Any) -> dict[str, Any]:
    """A scrape config for static ``host:port`` targets.

    Args:
        name: the ``job_name`` (the ``job`` label).
        targets: ``127.0.0.1:PORT`` addresses.
        **options: any other scrape-config keys (``metrics_path``, ``scrape_interval``,
            ``params``, ``metric_relabel_configs`` ...), copied as given.

    Returns:
        A mapping for `LocalPrometheus`'s ``scrape_configs``.
    """
    return {"job_name": name, "static_configs": [{"targets": list(targets)}], **options}


def prometheus_binary() -> Path:
    """Locate the ``prometheus`` binary.

    ``$REGISTRY_SLO_PROMETHEUS_BIN`` wins when set; otherwise ``prometheus`` on ``PATH``,
    then ``/usr/bin/prometheus``.

    Raises:
        RuntimeError: when no binary is found (naming the Debian package to install).
    """
    return find_binary(
        "prometheus", PROMETHEUS_BIN_ENV, _DEFAULT_BINARY, PROMETHEUS_DEBIAN_PACKAGE
    )


class LocalPrometheus(LocalProcess):
    """A real Prometheus process on 127.0.0.1 with its own config and TSDB.

    All arguments are keyword-only. Nothing runs until `start` (or ``with``). The port
    is chosen at the first start and kept by `restart`.

    Args:
        scrape_configs: scrape jobs (see `scrape_job`); their own keys win over the
            global intervals.
        rule_files: rule files (or globs) to load; paths are made absolute.
        scrape_interval: ``global.scrape_interval`` in seconds (``1`` is fine locally).
        evaluation_interval: ``global.evaluation_interval`` in seconds: how often rule
            groups without their own ``interval`` are evaluated.
        scrape_timeout: ``global.scrape_timeout``; default: the scrape interval, at most
            10 s (Prometheus refuses a timeout longer than the interval).
        external_labels: ``global.external_labels``.
        extra_config: mapping merged into the generated config last (top-level keys
            replace).
        feature_flags: ``--enable-feature`` values, e.g. ``exemplar-storage``.
        extra_args: more command-line flags, passed as given.
        retention: ``--storage.tsdb.retention.time`` (e.g. ``1d``).
        lookback_delta: ``--query.lookback-delta`` in seconds (default Prometheus' 5m).
        enable_lifecycle: pass ``--web.enable-lifecycle`` so `reload` works.
        storage_dir: use this TSDB directory (e.g. one holding backfilled blocks) instead
            of one inside the work dir; it is never removed.
        log_path: file receiving Prometheus' log (stderr); default ``prometheus.log``
            in the work dir.
        keep_workdir: keep the work dir (config, TSDB, log) on stop.
        start_timeout: seconds `start` waits for ``/-/ready``.

    The lifecycle (`start`, `stop`, `restart`, `kill`, `running`, `pid`, `port`,
    `workdir`, `config_path`, `log_path`, `log_tail`) comes from `LocalProcess`.
    """

    _name: ClassVar[str] = "prometheus"
    _start_error: ClassVar[type[RuntimeError]] = PrometheusStartError
    _config_name: ClassVar[str] = "prometheus.yml"
    _log_name: ClassVar[str] = "prometheus.log"
    # Prometheus takes longer than the registry to shut down cleanly (it closes its TSDB
    # and WAL); a SIGKILL too early could lose samples that `restart` should keep.
    _stop_grace: ClassVar[float] = 10.0

    def __init__(
        self,
        *,
        scrape_configs: Sequence[Mapping[str, Any]] = (),
        rule_files: Sequence[Path | str] = (),
        scrape_interval: float = 15.0,
        evaluation_interval: float = 15.0,
        scrape_timeout: float | None = None,
        external_labels: Mapping[str, str] | None = None,
        extra_config: Mapping[str, Any] | None = None,
        feature_flags: Sequence[str] = (),
        extra_args: Sequence[str] = (),
        retention: str | None = None,
        lookback_delta: float | None = None,
        enable_lifecycle: bool = True,
        storage_dir: Path | str | None = None,
        log_path: Path | str | None = None,
        keep_workdir: bool = False,
        start_timeout: float = 30.0,
    ) -> None:
        super().__init__(log_path=log_path, keep_workdir=keep_workdir, start_timeout=start_timeout)
        self.scrape_configs = [dict(c) for c in scrape_configs]
        self.rule_files = [str(Path(f).absolute()) for f in rule_files]
        self.scrape_interval = scrape_interval
        self.evaluation_interval = evaluation_interval
        self.scrape_timeout = (
            scrape_timeout if scrape_timeout is not None else min(scrape_interval, 10.0)
        )
        self.external_labels = dict(external_labels or {})
        self.extra_config: Mapping[str, Any] = dict(extra_config or {})
        self.feature_flags = tuple(feature_flags)
        self.extra_args = tuple(extra_args)
        self.retention = retention
        self.lookback_delta = lookback_delta
        self.enable_lifecycle = enable_lifecycle
        self._storage_dir_arg = Path(storage_dir) if storage_dir is not None else None
        self._client: httpx.Client | None = None

    # -- addresses and files -----------------------------------------------------------

    @property
    def address(self) -> str:
        """``127.0.0.1:PORT``, e.g. for a scrape job of Prometheus itself."""
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        """Base URL, ``http://127.0.0.1:PORT``."""
        return f"http://{self.address}"

    @property
    def data_dir(self) -> Path:
        """The TSDB directory (``--storage.tsdb.path``)."""
        return self._storage_dir_arg or self.workdir / "data"

    # -- config ------------------------------------------------------------------------

    def build_config(self) -> dict[str, Any]:
        """The ``prometheus.yml`` content for the current settings."""
        global_: dict[str, Any] = {
            "scrape_interval": prometheus_duration(self.scrape_interval),
            "scrape_timeout": prometheus_duration(self.scrape_timeout),
            "evaluation_interval": prometheus_duration(self.evaluation_interval),
        }
        if self.external_labels:
            global_["external_labels"] = self.external_labels
        config: dict[str, Any] = {"global": global_}
        if self.rule_files:
            config["rule_files"] = list(self.rule_files)
        config["scrape_configs"] = [dict(c) for c in self.scrape_configs]
        config.update(self.extra_config)
        return config

    def write_config(self) -> Path:
        """Write `build_config` to `config_path` (before a `reload`, after changes)."""
        self.config_path.write_text(yaml.safe_dump(self.build_config(), sort_keys=False))
        return self.config_path

    def command(self) -> list[str]:
        """The command line `start` runs."""
        args = [
            str(prometheus_binary()),
            f"--config.file={self.config_path}",
            f"--storage.tsdb.path={self.data_dir}",
            f"--web.listen-address={self.address}",
            # Debian's defaults point at /etc/prometheus; nothing here needs them.
            f"--web.console.templates={self.workdir}",
            f"--web.console.libraries={self.workdir}",
        ]
        if self.enable_lifecycle:
            args.append("--web.enable-lifecycle")
        if self.retention is not None:
            args.append(f"--storage.tsdb.retention.time={self.retention}")
        if self.lookback_delta is not None:
            args.append(f"--query.lookback-delta={prometheus_duration(self.lookback_delta)}")
        args += [f"--enable-feature={flag}" for flag in self.feature_flags]
        args += self.extra_args
        return args

    # -- lifecycle ---------------------------------------------------------------------

    def wait_ready(self, timeout: float = 30.0) -> None:
        """Wait until ``/-/ready`` answers 200 (the TSDB is open, rules are loaded).

        Raises:
            PrometheusStartError: the process exited or ``timeout`` seconds passed.
        """
        self._wait_ready(timeout)

    def reload(self) -> None:
        """Rewrite the config and make Prometheus reload it (and its rule files).

        Raises:
            PrometheusQueryError: Prometheus refused the new configuration.
        """
        if not self.enable_lifecycle:
            raise RuntimeError("reload needs enable_lifecycle=True")
        self.write_config()
        response = self._http().post(f"{self.url}/-/reload")
        if response.status_code != 200:
            raise PrometheusQueryError(
                f"reload refused: {response.text.strip()}", "reload", str(self.config_path)
            )

    # -- LocalProcess hooks ------------------------------------------------------------

    def _binary(self) -> Path:
        return prometheus_binary()

    def _allocate_ports(self) -> None:
        self._port = free_port()

    def _prepare(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.write_config()

    def _command(self) -> list[str]:
        return self.command()

    def _readiness_urls(self) -> list[str]:
        return [f"{self.url}/-/ready"]

    def _terminate(self) -> None:
        super()._terminate()
        if self._client is not None:
            self._client.close()
            self._client = None

    # -- the HTTP API ------------------------------------------------------------------

    def _http(self) -> httpx.Client:
        if self._client is None:
            self._client = httpx.Client(trust_env=False, timeout=30.0)
        return self._client

    def api(self, path: str, params: Mapping[str, Any] | None = None, *, what: str = "") -> Any:
        """GET ``/api/v1/<path>`` and return its ``data``.

        Args:
            path: e.g. ``query``, ``rules``, ``label/region/values``.
            params: query parameters (lists become repeated parameters).
            what: the expression, for error messages (default: the path).

        Raises:
            PrometheusQueryError: the API answered ``status: error`` (or not JSON).
        """
        response = self._http().get(f"{self.url}/api/v1/{path}", params=dict(params or {}))
        try:
            body = response.json()
        except ValueError:
            raise PrometheusQueryError(
                f"{path}: HTTP {response.status_code}: {response.text[:200]}", "http",
                what or path,
            ) from None
        if body.get("status") != "success":
            raise PrometheusQueryError(
                f"{what or path}: {body.get('errorType')}: {body.get('error')}",
                str(body.get("errorType")), what or path,
            )
        return body.get("data")

    def query(self, expr: str, at: float | None = None) -> list[InstantSample]:
        """Evaluate an instant query.

        Args:
            expr: PromQL.
            at: evaluation time (Unix seconds); default now.

        Returns:
            One sample per series (a scalar or string result is one sample without
            labels).

        Raises:
            PrometheusQueryError: the expression is invalid or failed.
        """
        params: dict[str, Any] = {"query": expr}
        if at is not None:
            params["time"] = f"{at:.3f}"
        data = self.api("query", params, what=expr)
        # Values are strings: "1.5", "NaN", "+Inf", "-Inf" (all of which float() reads).
        kind, result = data["resultType"], data["result"]
        if kind in ("scalar", "string"):
            return [InstantSample({}, float(result[0]), float(result[1]))]
        if kind != "vector":
            raise PrometheusQueryError(f"{expr}: unexpected {kind} result", "result", expr)
        return [
            InstantSample(dict(item["metric"]), float(item["value"][0]),
                          float(item["value"][1]))
            for item in result
        ]

    def query_range(self, expr: str, start: float, end: float, step: float) -> list[RangeSeries]:
        """Evaluate a range query (what a dashboard's time series panel does).

        Args:
            expr: PromQL.
            start: Unix seconds.
            end: Unix seconds.
            step: seconds between points.

        Raises:
            PrometheusQueryError: the expression is invalid or failed.
        """
        data = self.api(
            "query_range",
            {"query": expr, "start": f"{start:.3f}", "end": f"{end:.3f}", "step": f"{step:g}"},
            what=expr,
        )
        return [
            RangeSeries(dict(item["metric"]),
                        [(float(t), float(v)) for t, v in item["values"]])
            for item in data["result"]
        ]

    def query_exemplars(self, expr: str, start: float, end: float) -> list[dict[str, Any]]:
        """Exemplars of the series ``expr`` selects (needs ``exemplar-storage``).

        Returns:
            The API's list of ``{seriesLabels, exemplars: [{labels, value, timestamp}]}``.
        """
        params = {"query": expr, "start": f"{start:.3f}", "end": f"{end:.3f}"}
        return list(self.api("query_exemplars", params, what=expr) or [])

    def label_values(self, label: str, match: Sequence[str] = ()) -> list[str]:
        """Values of ``label``, optionally among the series ``match`` selects."""
        params = {"match[]": list(match)} if match else {}
        return list(self.api(f"label/{label}/values", params, what=label))

    def alerts(self) -> list[dict[str, Any]]:
        """Active alerts (pending and firing) with their labels and ``state``."""
        return list(self.api("alerts")["alerts"])

    def rule_groups(self) -> list[dict[str, Any]]:
        """Loaded rule groups with each rule's health, last error and evaluation time."""
        return list(self.api("rules")["groups"])

    def targets(self) -> list[dict[str, Any]]:
        """Active scrape targets with their ``health`` and ``lastError``."""
        return list(self.api("targets", {"state": "active"})["activeTargets"])

    def own_metrics(self) -> str:
        """Prometheus' own ``/metrics`` text (rule group durations, TSDB size ...)."""
        response = self._http().get(f"{self.url}/metrics")
        response.raise_for_status()
        return response.text

    def wait_for_targets(self, timeout: float = 30.0) -> list[dict[str, Any]]:
        """Wait until every scrape target has been scraped successfully once.

        Raises:
            TimeoutError: naming the targets that are not up and their last error.
        """
        deadline = time.monotonic() + timeout
        while True:
            targets = self.targets()
            down = [t for t in targets if t.get("health") != "up"]
            if targets and not down:
                return targets
            if time.monotonic() > deadline:
                detail = "; ".join(
                    f"{t.get('scrapeUrl')}: {t.get('health')} {t.get('lastError')}"
                    for t in down
                ) or "no targets"
                raise TimeoutError(f"scrape targets not up after {timeout:g}s: {detail}")
            time.sleep(0.2)

    def wait_for(
        self,
        expr: str,
        timeout: float = 60.0,
        until: Callable[[list[InstantSample]], bool] = bool,
        poll: float = 0.5,
    ) -> list[InstantSample]:
        """Poll an instant query until ``until(result)`` holds (default: any series).

        Returns:
            The first result that satisfied ``until``.

        Raises:
            TimeoutError: with the last result.
            PrometheusQueryError: the expression is invalid.
        """
        deadline = time.monotonic() + timeout
        while True:
            result = self.query(expr)
            if until(result):
                return result
            if time.monotonic() > deadline:
                raise TimeoutError(f"{expr}: condition not met within {timeout:g}s: {result}")
            time.sleep(poll)
