"""The webhook receiver: registries POST their events; each counts once.

Answers fast (the work per event is microseconds, done before answering) and always
with a 2xx for what it could read or will never be able to read (a malformed body is
counted as rejected and acknowledged: distribution retries a non-2xx answer forever,
holding back every later event of that endpoint). It answers 401 to a missing or wrong
bearer token and 413 to a body over ``max_body_bytes``, which the registry retries: those
are configuration errors to fix, and no event is lost meanwhile.

Deduplication: an event id seen before (within the last ``dedup_memory`` ids of the
endpoint) is ignored as ``duplicate``, so distribution's retries (it resends an envelope
whose delivery it could not confirm) never count twice.

Durability: with a :class:`Journal` (the SLI engine's, when it keeps a store), event ids
are committed in the same transaction as the counts of their events, and an envelope
holding events is answered only after that commit (a group commit, asked for at once):
an event acknowledged survives a crash, and one resent after a restart is known. No
commit within :data:`COMMIT_TIMEOUT` is answered 503, so the registry sends it again.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
from collections import OrderedDict
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Protocol

import structlog
from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from registry_slo.config import NotificationEndpoint, NotificationsConfig
from registry_slo.ingest.formats import DUPLICATE, Ignored, Rejected
from registry_slo.ingest.notify.events import Record, distribution_records, harbor_records
from registry_slo.ingest.pipeline import SourcePipeline
from registry_slo.observation import Observation

__all__ = ["COMMIT_TIMEOUT", "Deduplicator", "Journal", "NotificationReceiver"]

log = structlog.get_logger("registry_slo.ingest")


LONGEST_ID = 71
"""Event ids up to this long (a UUID, ``sha256:`` + 64 hex digits) are kept as given."""
COMMIT_TIMEOUT = 5.0
"""Seconds an envelope's answer waits for its events to be committed before a 503."""


class Journal(Protocol):
    """Where an endpoint's event ids become durable with the counts of their events (the
    SLI engine's :class:`~registry_slo.sli.engine.Journal`)."""

    def restore(self) -> list[str]:
        """The ids committed before, oldest first."""
        ...

    def remember(self, event_id: str) -> None:
        """Stage an id for the next commit."""
        ...

    def hold(self) -> AbstractContextManager[object]:
        """Keep the owner from committing while held."""
        ...

    async def committed(self, timeout: float) -> bool:
        """Wait until what was counted and remembered is committed (False: timed out)."""
        ...


class Deduplicator:
    """The last ``capacity`` event ids, oldest forgotten first.

    An id longer than :data:`LONGEST_ID` characters is remembered by its SHA-256, so the
    memory is bounded in bytes as well as in ids (a sender of megabyte ids cannot grow
    it beyond ``capacity`` x 64 bytes of keys). With a ``journal``, the ids committed
    before are known from the first call on, and every new id is staged to it.
    """

    def __init__(self, capacity: int, journal: Journal | None = None) -> None:
        self.capacity = capacity
        self.journal = journal
        self._ids: OrderedDict[str, None] = OrderedDict()
        self._restored = journal is None

    def __len__(self) -> int:
        return len(self._ids)

    def seen(self, event_id: str) -> bool:
        """Whether ``event_id`` was seen before; remember it either way."""
        if not self._restored:
            # At the first event, not at construction: the store opens after that.
            self._restored = True
            assert self.journal is not None
            for known in self.journal.restore():
                self._keep(known)
        if len(event_id) > LONGEST_ID:
            event_id = "sha256:" + hashlib.sha256(event_id.encode(errors="replace")).hexdigest()
        if event_id in self._ids:
            self._ids.move_to_end(event_id)
            return True
        self._keep(event_id)
        if self.journal is not None:
            self.journal.remember(event_id)
        return False

    def _keep(self, event_id: str) -> None:
        self._ids[event_id] = None
        if len(self._ids) > self.capacity:
            self._ids.popitem(last=False)


class _TooLarge(Exception):
    """The body is over ``max_body_bytes``."""


class NotificationReceiver:
    """A Starlette app with one POST route per configured endpoint.

    Args:
        config: the ``ingest.notifications`` section.
        pipelines: each endpoint's pipeline, by endpoint name.
        on_answer: called with ``(source, status code)`` for every request answered.
        journals: ``(endpoint name, capacity)`` → the endpoint's :class:`Journal`; without
            one, an envelope is answered once counted, and ids live in memory only.
    """

    def __init__(
        self,
        config: NotificationsConfig,
        pipelines: dict[str, SourcePipeline],
        on_answer: Callable[[str, int], None] = lambda source, code: None,
        journals: Callable[[str, int], Journal] | None = None,
    ) -> None:
        self.config = config
        self.pipelines = pipelines
        self.on_answer = on_answer
        self._token = config.bearer_token()
        self._dedup = {
            e.name: Deduplicator(
                config.dedup_memory,
                journals(e.name, config.dedup_memory) if journals is not None else None)
            for e in config.endpoints
        }
        routes = [
            Route(e.route, self._endpoint(e), methods=["POST"]) for e in config.endpoints
        ]
        routes.append(Route("/healthz", self._healthz, methods=["GET"]))
        self.app = Starlette(routes=routes)

    async def _healthz(self, request: Request) -> Response:
        return PlainTextResponse("ok\n")

    def _endpoint(self, endpoint: NotificationEndpoint) -> Callable[[Request], object]:
        async def handle(request: Request) -> Response:
            response = await self._handle(endpoint, request)
            self.on_answer(endpoint.name, response.status_code)
            return response

        return handle

    def _authorized(self, request: Request) -> bool:
        if self._token is None:
            return True
        given = request.headers.get("authorization", "")
        return hmac.compare_digest(given.encode(), f"Bearer {self._token}".encode())

    async def _read(self, request: Request) -> bytes:
        limit = self.config.max_body_bytes
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            raise _TooLarge
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > limit:
                raise _TooLarge
        return bytes(body)

    async def _handle(self, endpoint: NotificationEndpoint, request: Request) -> Response:
        pipeline = self.pipelines[endpoint.name]
        if not self._authorized(request):
            return PlainTextResponse("unauthorized\n", status_code=401,
                                     headers={"WWW-Authenticate": "Bearer"})
        try:
            raw = await self._read(request)
        except _TooLarge:
            pipeline.rejected("body_too_large", f"over {self.config.max_body_bytes} bytes")
            pipeline.flush()
            return PlainTextResponse("body too large\n", status_code=413)
        except ClientDisconnect:
            return PlainTextResponse("", status_code=400)
        try:
            records = self._records(endpoint, raw)
        except Rejected as exc:
            pipeline.rejected(exc.reason, exc.detail)
            pipeline.flush()
            return JSONResponse({"accepted": 0, "rejected": exc.reason}, status_code=202)
        except Exception:  # a reader bug: counted and acknowledged, never a 500 loop
            log.exception("notifications: reading a body failed", source=endpoint.name,
                          body=raw[:200])
            pipeline.rejected("internal_error")
            pipeline.flush()
            return JSONResponse({"accepted": 0, "rejected": "internal_error"}, status_code=202)
        dedup = self._dedup[endpoint.name]
        results: list[Observation | Ignored] = []
        bad = 0
        journal = dedup.journal
        # The ids and the counts of their events go into one commit, or neither does.
        with journal.hold() if journal is not None else contextlib.nullcontext():
            for event_id, result in records:
                if isinstance(result, Rejected):
                    pipeline.rejected(result.reason, result.detail)
                    bad += 1
                elif event_id is not None and dedup.seen(event_id):
                    results.append(DUPLICATE)
                else:
                    results.append(result)
            pipeline.records(results)
        pipeline.flush()
        # A duplicate waits too: its first copy may not be committed yet.
        if results and journal is not None and not await journal.committed(COMMIT_TIMEOUT):
            log.warning("notifications: events not committed in time; answered 503 so "
                        "the registry sends them again", source=endpoint.name,
                        events=len(results))
            return PlainTextResponse("not stored yet; send again\n", status_code=503)
        fresh = sum(1 for r in results if r is not DUPLICATE)
        answer: dict[str, int | str] = {"accepted": fresh, "duplicates": len(results) - fresh}
        if bad:
            answer["rejected"] = bad
        return JSONResponse(answer)

    def _records(self, endpoint: NotificationEndpoint, raw: bytes) -> list[Record]:
        try:
            body = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            raise Rejected("malformed_json", "the body is not JSON") from None
        except RecursionError:
            raise Rejected("malformed_json", "nested too deeply") from None
        if endpoint.format == "distribution":
            return distribution_records(body, endpoint.region, endpoint.name)
        return harbor_records(raw, body, endpoint.region, endpoint.name)
