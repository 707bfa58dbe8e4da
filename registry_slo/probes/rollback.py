"""Rollback readiness (guide M16, "broken rollback: garbage collected old images").

Rolling back only works if the digest rolled back to still exists. :class:`RollbackTargets`
is an observation sink fed by the region's ingest sources and notifications; for the
repositories of the region's ``rollback:`` section it remembers

- every digest *pulled by digest* (what deployments pinned by digest run), and
- for each of ``protected_tags``, the digests a push put under the tag, in order: the
  one before the current is the tag's rollback target ("the previous production digest").

Targets not seen for ``window`` are forgotten. The memory is a JSON file in the state
directory, written when it changes (a new digest, a tag moved, or a target seen again an
hour after it was last written), so a restart forgets nothing the ingest checkpoints will
not read again.

:class:`RollbackProbe` checks, every ``interval``, by ``HEAD`` of each manifest, that the
newest ``keep`` targets of each repository and every protected tag's previous digest are
still there; :class:`RollbackResults` holds what it found.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import structlog

from registry_slo.config import RollbackConfig
from registry_slo.observation import Observation
from registry_slo.oci import RegistryError
from registry_slo.probes._base import Outcome, Probe
from registry_slo.probes._region import RegionState

__all__ = ["RESAVE_AFTER", "RepositoryRollback", "RollbackProbe", "RollbackResults",
           "RollbackTargets", "TagRollback"]

log = structlog.get_logger("registry_slo.probes")

RESAVE_AFTER = 3600.0
"""A target seen again is written to the file once its last sighting there is this old."""
_FORMAT = 1


@dataclass(frozen=True, slots=True)
class TagRollback:
    """A protected tag's rollback target: the digest it pointed at before its last move."""

    repository: str
    tag: str
    previous: str
    present: bool


@dataclass(frozen=True, slots=True)
class RepositoryRollback:
    """A repository's rollback targets checked, and how many are gone."""

    checked: int
    missing: int


class RollbackResults:
    """The last check of one region (read at scrape)."""

    def __init__(self) -> None:
        self.repositories: dict[str, RepositoryRollback] = {}
        self.tags: list[TagRollback] = []


class RollbackTargets:
    """The rollback targets of one region (an observation sink; thread-safe).

    Args:
        region: the region.
        config: its ``rollback:`` section.
        path: the JSON file kept across restarts (``None``: memory only).
        clock: Unix time.
    """

    def __init__(self, region: str, config: RollbackConfig, path: Path | None,
                 clock: Callable[[], float] = time.time) -> None:
        self.region = region
        self.config = config
        self.path = path
        self.clock = clock
        self._repositories = set(config.repositories)
        self._protected = set(config.protected_tags)
        self._history: dict[tuple[str, str], list[str]] = {}
        self._seen: dict[tuple[str, str], float] = {}
        self._saved_seen: dict[tuple[str, str], float] = {}
        self._lock = threading.Lock()
        self._load()

    def _load(self) -> None:
        if self.path is None or not self.path.exists():
            return
        try:
            document = json.loads(self.path.read_text())
            if document.get("format") != _FORMAT:
                raise ValueError(f"format {document.get('format')!r}")
            history = {(str(r), str(t)): [str(d) for d in digests]
                       for r, t, digests in document["tags"]}
            seen = {(str(r), str(d)): float(at) for r, d, at in document["seen"]}
        except (OSError, ValueError, KeyError, TypeError) as exc:
            # Unreadable memory is said loudly and started afresh: never a crash.
            log.error("rollback: cannot read the remembered targets; starting empty",
                      region=self.region, path=str(self.path), error=str(exc))
            return
        self._history = {k: v for k, v in history.items() if k[0] in self._repositories}
        self._seen = {k: v for k, v in seen.items() if k[0] in self._repositories}
        self._saved_seen = dict(self._seen)

    def _save(self) -> None:
        if self.path is None:
            return
        document = {
            "format": _FORMAT,
            "tags": [[r, t, digests] for (r, t), digests in sorted(self._history.items())],
            "seen": [[r, d, at] for (r, d), at in sorted(self._seen.items())],
        }
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.path.with_suffix(".tmp")
        with temporary.open("w") as out:
            json.dump(document, out)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, self.path)
        self._saved_seen = dict(self._seen)

    def record(self, observation: Observation) -> None:
        """Remember a digest pulled by digest, or pushed under a protected tag."""
        o = observation
        if (o.region != self.region or not o.success or o.repository not in self._repositories
                or not o.digest):
            return
        key = (o.repository, o.digest)
        changed = False
        with self._lock:
            if o.operation == "push_manifest" and o.tag in self._protected:
                history = self._history.setdefault((o.repository, o.tag), [])
                if not history or history[-1] != o.digest:
                    history.append(o.digest)
                    del history[:-(self.config.keep + 1)]
                    changed = True
            elif not (o.operation == "pull_manifest" and o.tag is None):
                return
            when = max(o.time, self._seen.get(key, 0.0))
            self._seen[key] = when
            changed = changed or when - self._saved_seen.get(key, -RESAVE_AFTER) >= RESAVE_AFTER
            if changed:
                try:
                    self._save()
                except OSError as exc:
                    log.error("rollback: cannot write the remembered targets",
                              region=self.region, path=str(self.path), error=str(exc))

    def targets(self) -> tuple[dict[str, list[str]], list[tuple[str, str, str]]]:
        """What to check now: per repository, its newest ``keep`` targets seen within
        ``window``; and each protected tag's ``(repository, tag, previous digest)``."""
        horizon = self.clock() - self.config.window
        with self._lock:
            for key in [k for k, at in self._seen.items() if at < horizon]:
                del self._seen[key]
            newest: dict[str, list[tuple[float, str]]] = {}
            for (repository, digest), at in self._seen.items():
                newest.setdefault(repository, []).append((at, digest))
            previous = [(r, t, h[-2]) for (r, t), h in sorted(self._history.items())
                        if len(h) >= 2]
        chosen = {r: [d for _, d in sorted(pairs, reverse=True)[:self.config.keep]]
                  for r, pairs in newest.items()}
        return chosen, previous


class RollbackProbe(Probe):
    """Check that a region's rollback targets still exist (``HEAD`` of each manifest)."""

    kind = "rollback"

    def __init__(self, state: RegionState, targets: RollbackTargets,
                 results: RollbackResults) -> None:
        super().__init__(state.name)
        self.state = state
        self.targets = targets
        self.results = results

    async def run(self) -> Outcome:
        client = self.state.client
        newest, previous = self.targets.targets()
        present: dict[tuple[str, str], bool] = {}
        failed: RegistryError | None = None
        repositories: dict[str, RepositoryRollback] = {}
        for repository in self.targets.config.repositories:
            digests = list(dict.fromkeys(
                [*newest.get(repository, []), *(d for r, _, d in previous if r == repository)]))
            try:
                for digest in digests:
                    present[repository, digest] = (
                        await client.head_manifest(repository, digest) == digest)
            except RegistryError as exc:
                failed = failed or exc  # the other repositories' figures stay current
                continue
            repositories[repository] = RepositoryRollback(
                len(digests), sum(1 for d in digests if not present[repository, d]))
        self.results.repositories = repositories
        self.results.tags = [TagRollback(r, t, d, present[r, d]) for r, t, d in previous
                             if (r, d) in present]
        if failed is not None:
            raise failed
        return Outcome(repository=",".join(self.targets.config.repositories))
