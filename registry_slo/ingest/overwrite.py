"""Tag overwrite detection (F4): a push of an existing tag with a new digest.

Only sources whose records carry both the tag and the digest of a push can feed it
(``jsonl`` with both fields mapped; registry notifications). The digest a tag points to
is learnt from pushes and from pulls by tag that report the digest; a later successful
push of the same tag with another digest is an overwrite. The memory is bounded (least
recently used tags are forgotten) and starts empty at each start: the first push of a
tag after a restart is never reported.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

from registry_slo.observation import Observation

__all__ = ["TagOverwriteDetector"]


class TagOverwriteDetector:
    """Remember which digest each tag points to (thread-safe).

    Args:
        capacity: tags remembered (0 disables detection).
    """

    def __init__(self, capacity: int = 100_000) -> None:
        self.capacity = capacity
        self._tags: OrderedDict[tuple[str, str, str], str] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._tags)

    def observe(self, observation: Observation) -> bool:
        """Learn from one observation.

        Returns:
            ``True`` when it is a successful push that moved an existing tag to another
            digest.
        """
        if (
            not self.capacity
            or not observation.success
            or observation.tag is None
            or observation.digest is None
            or observation.repository is None
            or observation.operation not in ("push_manifest", "pull_manifest")
        ):
            return False
        key = (observation.region, observation.repository, observation.tag)
        with self._lock:
            previous = self._tags.get(key)
            self._tags[key] = observation.digest
            self._tags.move_to_end(key)
            if len(self._tags) > self.capacity:
                self._tags.popitem(last=False)
        return (
            observation.operation == "push_manifest"
            and previous is not None
            and previous != observation.digest
        )
