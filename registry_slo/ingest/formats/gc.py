"""``distribution-gc``: the output of distribution's garbage collector (M8).

``docker-registry garbage-collect [--dry-run] [--delete-untagged] CONFIG`` (``registry
garbage-collect`` upstream) is an offline command, run by cron or a Kubernetes CronJob,
whose stdout and stderr go to one log (``>> /var/log/registry-gc.log 2>&1``, or the
pod's log). Checked against Debian's ``docker-registry`` 2.8.2, one run writes:

* stdout, plain lines without a timestamp: per repository its name on a line of its own,
  then ``<repo>: marking manifest <digest> `` and ``<repo>: marking blob <digest>``
  (with ``--delete-untagged``, ``manifest eligible for deletion: <digest>`` for untagged
  manifests); then an empty line, the summary ``N blobs marked, M blobs and K manifests
  eligible for deletion``, and ``blob eligible for deletion: <digest>`` per blob;
* stderr, through the registry's logrus logger in the formatter its configuration names
  (``json``, ``logstash`` or ``text``, each with a timestamp), only without
  ``--dry-run``: ``deleting manifest tag reference: …`` and ``deleting manifest: …``
  (``--delete-untagged``, before the summary), then ``Deleting blob: <path>`` right
  after each blob's ``blob eligible`` line;
* on failure (exit status 1) one of ``configuration error: …`` (then the usage text),
  ``failed to garbage collect: …``, ``failed to construct … driver: …``, ``unable to
  configure logging with config: …``, ``failed to construct registry: …`` or cobra's
  ``Error: …``. All but the first two lack a final newline: the next run's first line
  is glued to them, and a failure is only read once something (the next run, or an
  ``echo`` after the command) ends its line. Each occurrence counts as one failed run.

Lines in the kubelet's CRI log format (``<RFC 3339 time> stdout|stderr F|P <line>``, a
CronJob pod's log under ``/var/log/pods``) are read too, with that time. Lines of
distribution 3 that 2.8 does not write (``<repo>: layer link eligible for deletion: …``,
``manifest tags path of repository … does not exist``) are known and change nothing.

None of this is a registry operation: every line is ignored (``not_an_operation``) or
rejected (``unknown_format`` for a line that is not the collector's, ``malformed_json``,
``missing_field`` and ``bad_value`` for logrus lines and summaries that cannot be read).
What a line says of its run goes out as a :class:`~registry_slo.ingest.formats.GcReport`.

Runs. Output spans lines, so the parser follows the run in progress (its state is saved
in the source's checkpoint with the read positions: an exporter restarted in the middle
of a run goes on with it, and counts nothing twice). The run's totals come from its
summary line alone; each deletion line counts one deletion as it is read. Its outcome:

* ``ok`` once the M blobs its summary lists are all deleted (M ``Deleting blob`` lines);
* ``dry_run`` once its M ``blob eligible`` lines are read and no ``Deleting blob`` line
  came: a real run writes each deletion right after its blob's line;
* with M = 0, at the summary: ``ok``, or ``dry_run`` when it lists eligible manifests and
  deleted none (a real run deletes them before its summary). A run that found nothing to
  delete reads the same dry or not, and counts as ``ok``;
* ``failed``: a failure line, or a run whose output stops before its outcome is known
  (it was killed), once the next run's output begins.

A run with M = 0 is over at its summary. Otherwise it is over once its outcome is known
and a line of another run follows, or nothing new was read for :data:`SETTLE` seconds,
or the input ends (``replay``): a deletion line may reach the log after the blob lines
(stdout and stderr through two pipes), and the last blob's deletion, logged before it
is attempted, may fail — its failure line then makes the run ``failed``. A run is timed
at its last line.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

from registry_slo._names import repository_name
from registry_slo._units import LARGEST_SIZE
from registry_slo.ingest.formats._base import NOT_AN_OPERATION, Ignored, check_values
from registry_slo.ingest.formats._gc_facts import (
    GcDeleted,
    GcFact,
    GcLastSuccess,
    GcReport,
    GcResult,
    GcRunEnded,
    GcSummary,
)
from registry_slo.ingest.formats._http import rfc3339
from registry_slo.ingest.formats._logrus import logrus_fields
from registry_slo.ingest.formats._verdict import Rejected

__all__ = ["SETTLE", "DistributionGcParser"]

SETTLE = 10.0
"""Seconds without a new line after which a run whose outcome is known (its blobs all
listed, or all deleted) is over: a real run writes its next deletion line within
microseconds of the blob's line, and log pipelines deliver stdout and stderr within
seconds of each other."""

_STATE_VERSION = 1
_DIGEST = re.compile(r"[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]+")
_CRI = re.compile(
    r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:\d\d)) (?:stdout|stderr) [FP] ?"
)
_MARKING = re.compile(r"(\S+): marking (?:manifest|blob) (\S+)")
_MANIFEST_ELIGIBLE = re.compile(r"manifest eligible for deletion: (\S.*)")
_TAGS_MISSING = re.compile(r"manifest tags path of repository \S+ does not exist")
_LAYER_LINK = re.compile(r"\S+: layer link eligible for deletion: \S+")
_SUMMARY = re.compile(
    r"(\d+) blobs marked, (\d+) blobs and (\d+) manifests eligible for deletion"
)
_BLOB_ELIGIBLE = re.compile(r"blob eligible for deletion: (\S+)")
_FAILURE = re.compile(
    r"failed to garbage collect: |failed to construct (?:\S+ driver|registry): "
    r"|unable to configure logging with config: "
)
"""The messages the command exits with and that end without a newline: one run each,
even glued on one line."""
_FAILURE_LINE = ("configuration error: ", "Error: ", "panic: ")
"""Failures that begin a line of their own."""
_USAGE = re.compile(
    r"Usage:|Flags:|Global Flags:|Available Commands:|  registry \S.*|  -\w, --[\w-]+ .*"
    r"|`(?:registry|garbage-collect)`.*|Use \"registry .*"
)
"""Cobra's usage and help text (after a configuration error, or ``--help``)."""
_DELETIONS: tuple[tuple[str, Literal["blob", "manifest", "tag"]], ...] = (
    ("Deleting blob: ", "blob"),
    ("deleting manifest: ", "manifest"),
    ("deleting manifest tag reference: ", "tag"),
)

Phase = Literal["marking", "sweeping", "ending"]


@dataclass
class _Run:
    """The run in progress.

    ``marking``: its mark phase (and, with ``--delete-untagged``, the manifest
    deletions before the summary); ``sweeping``: after its summary; ``ending``: its
    outcome is known (``result``) and it is over at the next line of another run, after
    :data:`SETTLE` seconds of quiet, or at the end of the input.
    """

    phase: Phase = "marking"
    result: GcResult = "ok"
    summary: GcSummary | None = None
    eligible: int = 0
    blobs_deleted: int = 0
    manifests_deleted: int = 0
    first_deletion: float | None = None
    last_deletion: float | None = None
    timed: bool = True
    last_time: float = 0.0

    def to_json(self) -> dict[str, Any]:
        s = self.summary
        return {
            "phase": self.phase, "result": self.result,
            "summary": None if s is None else [s.blobs_marked, s.blobs_eligible,
                                               s.manifests_eligible],
            "eligible": self.eligible, "blobs_deleted": self.blobs_deleted,
            "manifests_deleted": self.manifests_deleted,
            "first_deletion": self.first_deletion, "last_deletion": self.last_deletion,
            "timed": self.timed, "last_time": self.last_time,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> _Run:
        summary = data["summary"]
        phase = data["phase"]
        result = data["result"]
        if phase not in ("marking", "sweeping", "ending") or \
                result not in ("ok", "dry_run", "failed"):
            raise ValueError(f"unknown phase or result {phase!r} {result!r}")
        return cls(
            phase=phase, result=result,
            summary=None if summary is None else GcSummary(*(int(n) for n in summary)),
            eligible=int(data["eligible"]), blobs_deleted=int(data["blobs_deleted"]),
            manifests_deleted=int(data["manifests_deleted"]),
            first_deletion=_optional_float(data["first_deletion"]),
            last_deletion=_optional_float(data["last_deletion"]),
            timed=bool(data["timed"]), last_time=float(data["last_time"]),
        )


def _optional_float(value: Any) -> float | None:
    return None if value is None else float(value)


@dataclass(frozen=True, slots=True)
class _Mark:
    """A line of the mark phase (a repository, a marked manifest or blob, an untagged
    manifest): a run is under way."""


@dataclass(frozen=True, slots=True)
class _Eligible:
    """``blob eligible for deletion: …``."""


@dataclass(frozen=True, slots=True)
class _Deletion:
    kind: Literal["blob", "manifest", "tag"]
    timed: bool


@dataclass(frozen=True, slots=True)
class _Failure:
    runs: int
    deleting: bool  # the (first) failure is a deletion that failed


@dataclass(frozen=True, slots=True)
class _Known:
    """A line of the collector's that says nothing of the run (usage text, distribution
    3's layer links, other logrus messages)."""


_Line = _Mark | GcSummary | _Eligible | _Deletion | _Failure | _Known


@dataclass
class _Progress:
    """What the parser knows across lines (the checkpointed state)."""

    since: float
    last_success: float | None = None
    summary: GcSummary | None = None
    run: _Run | None = None
    quiet_since: float = 0.0
    facts: list[GcFact] = field(default_factory=list)


class DistributionGcParser:
    """Parser of the garbage collector's output (see the module docstring).

    Args:
        region: the region whose registry's storage it collects.
        source: the ingest source's name.
        clock: wall clock (the time a line without a timestamp is read).
    """

    format: ClassVar[str] = "distribution-gc"

    def __init__(self, region: str, source: str,
                 clock: Callable[[], float] = time.time) -> None:
        self.region = region
        self.source = source
        self._clock = clock
        self._state = _Progress(since=clock())

    # -- the line parser ---------------------------------------------------------------

    def parse(self, line: bytes) -> Ignored:
        """Read one line; see :class:`~registry_slo.ingest.formats.Parser`.

        Returns:
            :data:`NOT_AN_OPERATION`, or a :class:`GcReport` of what the line says.

        Raises:
            Rejected: not the collector's line, or one that cannot be read.
        """
        now = self._clock()
        text = line.decode().rstrip()
        stamped: float | None = None
        cri = _CRI.match(text)
        if cri is not None:
            stamped = rfc3339(cri.group(1))
            check_values(stamped, None, None, 0, 0)
            text = text[cri.end():]
            if not text.strip():
                return NOT_AN_OPERATION
        kind, logged = _classify(text)
        when = logged if logged is not None else stamped
        self._state.quiet_since = now
        self._apply(kind, now if when is None else when, when is not None)
        facts = self._take()
        return self._report(facts) if facts else NOT_AN_OPERATION

    def settle(self, now: float) -> GcReport | None:
        """End a run whose outcome is known once nothing was read for :data:`SETTLE`
        seconds (``now = math.inf``: the input is over).

        Returns:
            The report of the run that ended, if one did.
        """
        run = self._state.run
        if run is None or run.phase != "ending" or now - self._state.quiet_since < SETTLE:
            return None
        self._end(run.result)
        return self._report(self._take())

    # -- checkpointed state ------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        """What to keep in the source's checkpoint (JSON-ready)."""
        s = self._state
        return {
            "version": _STATE_VERSION,
            "since": s.since,
            "last_success": s.last_success,
            "summary": None if s.summary is None else [
                s.summary.blobs_marked, s.summary.blobs_eligible,
                s.summary.manifests_eligible],
            "run": None if s.run is None else s.run.to_json(),
            "quiet_since": s.quiet_since,
        }

    def restore(self, saved: Mapping[str, Any] | None) -> GcReport:
        """Go on from a checkpoint's state (``None``: a first start, watching from now).

        Returns:
            The figures restored (the last success, or the start; the last summary),
            for the metrics of a new process.

        Raises:
            ValueError: ``saved`` is not a state this parser wrote (the caller logs it
                and starts afresh).
        """
        if saved is None:
            self._state = _Progress(since=self._clock())
        else:
            if saved.get("version") != _STATE_VERSION:
                raise ValueError(f"unknown state version {saved.get('version')!r}")
            try:
                summary = saved["summary"]
                run = saved["run"]
                self._state = _Progress(
                    since=float(saved["since"]),
                    last_success=_optional_float(saved["last_success"]),
                    summary=None if summary is None else GcSummary(
                        *(int(n) for n in summary)),
                    run=None if run is None else _Run.from_json(run),
                    quiet_since=float(saved["quiet_since"]),
                )
            except (KeyError, TypeError, ValueError) as exc:
                raise ValueError(f"unusable state: {exc!r}") from None
        s = self._state
        if s.summary is not None:
            s.facts.append(s.summary)
        s.facts.append(GcLastSuccess(s.since if s.last_success is None else s.last_success))
        return self._report(self._take())

    # -- the run in progress -----------------------------------------------------------

    def _take(self) -> tuple[GcFact, ...]:
        """The facts gathered since the last report."""
        facts, self._state.facts = tuple(self._state.facts), []
        return facts

    def _report(self, facts: tuple[GcFact, ...]) -> GcReport:
        return GcReport(NOT_AN_OPERATION.reason, self.region, self.source, facts)

    def _begin(self) -> _Run:
        """End the run in progress (over, or cut short: failed) and begin another."""
        run = self._state.run
        if run is not None:
            self._end(run.result if run.phase == "ending" else "failed")
        run = self._state.run = _Run()
        return run

    def _end(self, result: GcResult, when: float | None = None) -> None:
        s = self._state
        run = s.run
        if run is None:  # a failure outside a run: a run of its own
            s.facts.append(GcRunEnded(result, 0.0 if when is None else when, None, 0))
            return
        s.run = None
        deleted = run.blobs_deleted + run.manifests_deleted
        bracket = None
        if deleted and run.timed and run.first_deletion is not None \
                and run.last_deletion is not None:
            bracket = (run.first_deletion, run.last_deletion)
        finished = run.last_time if when is None else max(run.last_time, when)
        s.facts.append(GcRunEnded(result, finished, bracket, deleted))
        if result == "ok":
            s.last_success = finished if s.last_success is None else max(
                s.last_success, finished)
            s.facts.append(GcLastSuccess(s.last_success))

    def _apply(self, kind: _Line, when: float, timed: bool) -> None:
        s = self._state
        run = s.run
        match kind:
            case _Mark():
                if run is None or run.phase != "marking":
                    run = self._begin()
                run.last_time = when
            case GcSummary():
                if run is None or run.phase != "marking":
                    run = self._begin()
                run.summary = s.summary = kind
                run.phase = "sweeping"
                run.last_time = when
                s.facts.append(kind)
                self._check(run)
            case _Eligible():
                if run is not None and run.phase != "marking":
                    run.eligible += 1
                    run.last_time = when
                    self._check(run)
            case _Deletion():
                if kind.kind != "tag":
                    s.facts.append(GcDeleted(kind.kind))
                if run is None:
                    if kind.kind == "blob":
                        return  # the rest of a run begun before this source read it
                    run = self._begin()  # manifest deletions come before the summary
                if kind.kind == "blob":
                    run.blobs_deleted += 1
                elif kind.kind == "manifest":
                    run.manifests_deleted += 1
                if not timed:
                    run.timed = False
                else:
                    if run.first_deletion is None:
                        run.first_deletion = when
                    run.last_deletion = when
                run.last_time = when
                if run.phase == "ending" and run.result == "dry_run":
                    run.phase = "sweeping"  # a deletion after all its blobs were listed
                self._check(run)
            case _Failure():
                for index in range(kind.runs):
                    run = s.run
                    if run is not None and run.phase == "ending" and not (
                            index == 0 and kind.deleting and run.result == "ok"):
                        self._end(run.result)  # over: the failure is another run's
                    self._end("failed", when)
            case _Known():
                pass

    def _check(self, run: _Run) -> None:
        """Whether the run's outcome is known, from its summary and its lines so far
        (a summary without eligible blobs ends it at once)."""
        summary = run.summary
        if summary is None or run.phase == "marking":
            return
        eligible = summary.blobs_eligible
        if eligible == 0:  # nothing more to come: over at once
            dry = summary.manifests_eligible > 0 and run.manifests_deleted == 0
            self._end("dry_run" if dry else "ok")
        elif run.eligible >= eligible and run.blobs_deleted == 0:
            run.phase, run.result = "ending", "dry_run"
        elif run.eligible >= eligible and run.blobs_deleted >= eligible:
            run.phase, run.result = "ending", "ok"


def _classify(text: str) -> tuple[_Line, float | None]:
    """What a line is, and its logrus timestamp (``None``: a plain line).

    Raises:
        Rejected: not the collector's line, or one that cannot be read.
    """
    fields = logrus_fields(text)
    if fields is not None:
        return _logrus(fields)
    if text.startswith(_FAILURE_LINE):
        return _Failure(1 + len(_FAILURE.findall(text)), "failed to delete " in text), None
    failure = _FAILURE.match(text)
    if failure is not None:
        return _Failure(len(_FAILURE.findall(text)), "failed to delete " in text), None
    if (marking := _MARKING.fullmatch(text)) is not None:
        _repository(marking.group(1))
        _digest(marking.group(2))
        return _Mark(), None
    if (summary := _SUMMARY.fullmatch(text)) is not None:
        groups = summary.groups()
        if any(len(n) > 16 or int(n) > LARGEST_SIZE for n in groups):
            raise Rejected("bad_value", "a count above 2**53")
        marked, blobs, manifests = (int(n) for n in groups)
        return GcSummary(marked, blobs, manifests), None
    if (eligible := _BLOB_ELIGIBLE.fullmatch(text)) is not None:
        _digest(eligible.group(1))
        return _Eligible(), None
    if _MANIFEST_ELIGIBLE.fullmatch(text) or _TAGS_MISSING.fullmatch(text):
        return _Mark(), None
    if _LAYER_LINK.fullmatch(text) or _USAGE.fullmatch(text):
        return _Known(), None
    try:
        repository_name(text)
    except ValueError:
        raise Rejected("unknown_format", "not a line of the garbage collector") from None
    return _Mark(), None


def _logrus(fields: dict[str, Any]) -> tuple[_Line, float | None]:
    message = fields.get("msg", fields.get("message"))
    if not isinstance(message, str):
        raise Rejected("missing_field", "msg")
    stamp = fields.get("time", fields.get("@timestamp"))
    if not isinstance(stamp, str):
        raise Rejected("missing_field", "time")
    when = rfc3339(stamp)
    check_values(when, None, None, 0, 0)
    for prefix, kind in _DELETIONS:
        if message.startswith(prefix):
            return _Deletion(kind, True), when
    if fields.get("level") in ("fatal", "panic"):
        return _Failure(1, False), when
    return _Known(), when


def _repository(name: str) -> None:
    try:
        repository_name(name)
    except ValueError:
        raise Rejected("bad_value", f"repository {name[:80]!r}") from None


def _digest(text: str) -> None:
    if not _DIGEST.fullmatch(text):
        raise Rejected("bad_value", f"digest {text[:80]!r}")

