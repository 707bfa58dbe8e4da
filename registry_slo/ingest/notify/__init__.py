"""Registry notifications (webhooks): distribution envelopes and Harbor webhooks."""

from __future__ import annotations

from registry_slo.ingest.notify.events import Record, distribution_records, harbor_records
from registry_slo.ingest.notify.receiver import Deduplicator, Journal, NotificationReceiver
from registry_slo.ingest.notify.server import serve_notifications

__all__ = [
    "Deduplicator",
    "Journal",
    "NotificationReceiver",
    "Record",
    "distribution_records",
    "harbor_records",
    "serve_notifications",
]
