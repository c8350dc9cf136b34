"""The speed layer's ingest loop: fetch a batch from a durable pull consumer, store it
exactly once (``AnalyticsStore.ingest``: raw events and rollups in one transaction), and
only then ack every message of the batch. (Explicit acks, not "ack all": after a crash the
dead client's in-flight deliveries would be acked by a later ack-all before they were ever
redelivered, and lost.)

A failing database never loses or double-counts: the batch is retried with backoff and not
acked until it is committed; if the process dies in between, JetStream redelivers after
``ack_wait`` and the stored keys make the redelivery a no-op.
"""
from __future__ import annotations

import asyncio
import collections
import logging
import time
from typing import Callable

import nats.errors

from system.analytics.model import BadEvent, Event, parse
from system.analytics.store import AnalyticsStore

log = logging.getLogger("nineslab.analytics")


class IngestStats:
    """What the ingest loops did, for /metrics, /api/stats and the lag tracker."""

    def __init__(self, keep: int = 200_000) -> None:
        self.ingested = 0
        self.duplicates = 0
        self.bad = 0
        self.batches = 0
        self.lags: collections.deque[float] = collections.deque(maxlen=keep)
        self.pending: dict[str, int] = {}
        self.oldest_unacked_ts: dict[str, float | None] = {}
        self.last_commit: float | None = None

    def lag_quantile(self, q: float) -> float | None:
        if not self.lags:
            return None
        ordered = sorted(self.lags)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


class Ingestor:
    def __init__(self, store: AnalyticsStore, stats: IngestStats, *, fetch_batch: int = 1000,
                 metrics: dict | None = None, clock: Callable[[], float] = time.time) -> None:
        self.store, self.stats, self.fetch_batch = store, stats, fetch_batch
        self.metrics, self.clock = metrics or {}, clock

    def decode(self, msgs: list) -> list[Event]:
        events = []
        for msg in msgs:
            md = msg.metadata
            try:
                event = parse(msg.subject, msg.data, md.sequence.stream, md.timestamp.timestamp())
            except BadEvent as exc:
                self.stats.bad += 1
                if "bad" in self.metrics:
                    self.metrics["bad"].inc()
                log.warning("skipping a bad event: %s", exc)
                continue
            if event is not None:
                events.append(event)
        return events

    async def run(self, stream: str, sub) -> None:
        """Consume forever (until cancelled)."""
        while True:
            try:
                msgs = await sub.fetch(self.fetch_batch, timeout=1.0)
            except nats.errors.TimeoutError:
                self.stats.pending[stream] = 0
                self.stats.oldest_unacked_ts[stream] = None
                continue
            except (nats.errors.ConnectionClosedError, nats.errors.ConnectionReconnectingError,
                    nats.errors.NoRespondersError, OSError) as exc:
                log.warning("fetch from %s failed: %s %s", stream, type(exc).__name__, exc)
                await asyncio.sleep(0.5)
                continue
            if not msgs:
                continue
            events = self.decode(msgs)
            self.stats.oldest_unacked_ts[stream] = min((e.ts for e in events), default=None)
            await self._commit(stream, events)
            try:
                for msg in msgs:
                    await msg.ack()
            except (nats.errors.Error, OSError) as exc:   # redelivered later; the keys make it a no-op
                log.warning("ack of %s batch failed: %s", stream, exc)
            self.stats.pending[stream] = msgs[-1].metadata.num_pending
            self.stats.oldest_unacked_ts[stream] = None

    async def _commit(self, stream: str, events: list[Event]) -> None:
        delay = 0.1
        while True:
            try:
                fresh = await self.store.ingest(events)
                break
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - any database failure: retry, never ack
                log.warning("storing a batch of %d %s events failed, retrying: %s", len(events), stream, exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)
        now = self.clock()
        self.stats.batches += 1
        self.stats.ingested += len(fresh)
        self.stats.duplicates += len(events) - len(fresh)
        self.stats.last_commit = now
        for event in fresh:
            self.stats.lags.append(max(0.0, now - event.ts))
        if self.metrics:
            for event in fresh:
                self.metrics["ingested"].labels(event.status).inc()
            self.metrics["duplicates"].inc(len(events) - len(fresh))
            lag_hist = self.metrics["lag"]
            for event in fresh[-50:]:   # a sample: the histogram need not see every event
                lag_hist.observe(max(0.0, now - event.ts))
