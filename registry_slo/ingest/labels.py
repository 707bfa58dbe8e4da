"""Bounded ``repository`` labels: an allow-list, or the N busiest per region.

A registry may hold 100,000 repositories; a label per repository would blow up
Prometheus. :class:`RepositoryLabeler` gives a repository its own label only when the
configuration allows it and folds the rest into :data:`OTHER`.

``top_n`` counts requests per repository and region in a bounded table (at most
``16 * N`` entries, at least 256; when full, the less busy half is forgotten, so a
repository that falls out starts counting again). The labelled set is the N busiest of
that table, re-evaluated at every request while the region has seen fewer than
``warmup`` requests and every ``reevaluate_every`` requests after that; in between, a
repository gets a label at once while fewer than N have one. A repository
that leaves the top N gets ``other`` from then on (its series stops growing); at most
``4 * N`` repositories are ever labelled per region, so the number of series stays
bounded even when the busiest set keeps changing: once that budget is spent, only
repositories already labelled once can come back.
"""

from __future__ import annotations

import fnmatch
import heapq
import re
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field

from registry_slo.config import RepositoryLabels

__all__ = ["OTHER", "RepositoryLabeler"]

OTHER = "other"
"""The label of every repository without its own."""


@dataclass
class _Region:
    counts: dict[str, int] = field(default_factory=dict)
    labelled: set[str] = field(default_factory=set)
    ever: set[str] = field(default_factory=set)
    seen: int = 0
    since_evaluation: int = 0


class RepositoryLabeler:
    """Decide the ``repository`` label of an observation (thread-safe).

    Args:
        config: the ``ingest.repositories`` section.
        keep: repositories always labelled with their own name (bounded by config).
        reevaluate_every: requests between two re-evaluations of the top N, after warm-up.
        warmup: requests per region during which the top N is re-evaluated every time.
    """

    def __init__(
        self, config: RepositoryLabels, reevaluate_every: int = 1000, warmup: int = 1000,
        keep: Iterable[str] = (),
    ) -> None:
        self.config = config
        # Alerts select these by name (protected repositories): never folded into
        # "other", whatever the allow-list or the top N say.
        self._keep = frozenset(keep)
        self._allow = (
            re.compile("|".join(fnmatch.translate(p) for p in config.allow))
            if config.allow
            else None
        )
        self._top_n = 0 if config.allow is not None else config.top_n
        self._capacity = max(256, 16 * self._top_n)
        self._budget = 4 * self._top_n
        self._reevaluate_every = reevaluate_every
        self._warmup = warmup
        self._regions: dict[str, _Region] = {}
        self._lock = threading.Lock()

    def label(self, region: str, repository: str | None) -> str | None:
        """The label for ``repository`` in ``region`` (``None`` stays ``None``)."""
        if repository is None:
            return None
        if repository in self._keep:
            return repository
        if self._allow is not None:
            return repository if self._allow.fullmatch(repository) else OTHER
        if self._top_n == 0:
            return OTHER
        with self._lock:
            state = self._regions.get(region)
            if state is None:
                state = self._regions[region] = _Region()
            counts = state.counts
            counts[repository] = counts.get(repository, 0) + 1
            state.seen += 1
            state.since_evaluation += 1
            if len(counts) > self._capacity:
                self._forget(state)
            if state.seen <= self._warmup or state.since_evaluation >= self._reevaluate_every:
                self._evaluate(state)
            elif (
                repository not in state.labelled
                and len(state.labelled) < self._top_n
                and (repository in state.ever or len(state.ever) < self._budget)
            ):  # room left: no need to wait for the next evaluation
                state.labelled.add(repository)
                state.ever.add(repository)
            return repository if repository in state.labelled else OTHER

    def labelled(self, region: str) -> frozenset[str]:
        """The repositories labelled in ``region`` right now."""
        with self._lock:
            state = self._regions.get(region)
            return frozenset(state.labelled) if state else frozenset()

    def _evaluate(self, state: _Region) -> None:
        state.since_evaluation = 0
        top = heapq.nlargest(self._top_n, state.counts.items(), key=lambda kv: (kv[1], kv[0]))
        chosen: set[str] = set()
        for name, _ in top:
            if name in state.ever or len(state.ever) < self._budget:
                state.ever.add(name)
                chosen.add(name)
        state.labelled = chosen

    def _forget(self, state: _Region) -> None:
        keep = heapq.nlargest(self._capacity // 2, state.counts.items(), key=lambda kv: kv[1])
        kept = dict(keep)
        for name in state.labelled:  # the labelled ones keep their counts to compare
            if name in state.counts:
                kept[name] = state.counts[name]
        state.counts = kept
