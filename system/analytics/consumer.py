"""The speed layer's ingest loop: take a batch of what the durable consumer pushed, store it
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
        self.expired = 0
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


def ack_fields(msg) -> tuple[int, float, int]:
    """Stream sequence, timestamp (s) and pending count from a JetStream reply subject.

    ``$JS.ACK.<stream>.<consumer>.<delivered>.<sseq>.<cseq>.<ts_ns>.<pending>`` (or with a
    domain and account hash after ``ACK``); parsed by hand because ``msg.metadata`` builds
    datetimes and costs more than the rest of the event's handling.
    """
    tokens = (msg.reply or "").split(".")
    if len(tokens) == 9:
        return int(tokens[5]), int(tokens[7]) / 1e9, int(tokens[8])
    if len(tokens) >= 11:
        return int(tokens[7]), int(tokens[9]) / 1e9, int(tokens[10])
    md = msg.metadata
    return md.sequence.stream, md.timestamp.timestamp(), md.num_pending


class Inbox:
    """Where pushed messages wait for the ingest loop (filled by the subscription callback)."""

    def __init__(self) -> None:
        self.msgs: list = []
        self.ready = asyncio.Event()

    async def put(self, msg) -> None:
        self.msgs.append(msg)
        self.ready.set()

    async def take(self, limit: int) -> list:
        await self.ready.wait()
        batch, self.msgs = self.msgs[:limit], self.msgs[limit:]
        if not self.msgs:
            self.ready.clear()
        return batch


class Ingestor:
    def __init__(self, store: AnalyticsStore, stats: IngestStats, *, fetch_batch: int = 1000,
                 metrics: dict | None = None, clock: Callable[[], float] = time.time) -> None:
        self.store, self.stats, self.fetch_batch = store, stats, fetch_batch
        self.metrics, self.clock = metrics or {}, clock

    def decode(self, msgs: list) -> list[Event]:
        events = []
        for msg in msgs:
            try:
                seq, stream_ts, _pending = ack_fields(msg)
                event = parse(msg.subject, msg.data, seq, stream_ts)
            except (BadEvent, ValueError) as exc:
                self.stats.bad += 1
                if "bad" in self.metrics:
                    self.metrics["bad"].inc()
                log.warning("skipping a bad event: %s", exc)
                continue
            if event is not None:
                events.append(event)
        return events

    async def run(self, stream: str, inbox: Inbox, worker: int = 0) -> None:
        """Count what arrives in ``inbox`` forever (until cancelled). Several workers may share
        an inbox: while one waits for its commit, the next decodes (counts commute)."""
        slot = f"{stream}/{worker}"
        while True:
            msgs = await inbox.take(self.fetch_batch)
            events = self.decode(msgs)
            self.stats.oldest_unacked_ts[slot] = min((e.ts for e in events), default=None)
            await self._commit(stream, events)
            try:
                for msg in msgs:
                    await msg.ack()
            except (nats.errors.Error, OSError) as exc:   # redelivered later; the keys make it a no-op
                log.warning("ack of a %s batch failed: %s", stream, exc)
            try:
                self.stats.pending[stream] = ack_fields(msgs[-1])[2] + len(inbox.msgs)
            except ValueError:
                pass
            self.stats.oldest_unacked_ts[slot] = None
    async def _commit(self, stream: str, events: list[Event]) -> None:
        delay = 0.1
        while True:
            try:
                result = await self.store.ingest(events)
                break
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - any database failure: retry, never ack
                log.warning("storing a batch of %d %s events failed, retrying: %s", len(events), stream, exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)
        now = self.clock()
        fresh, expired = result.fresh, result.expired
        if expired:
            log.warning("%d %s events older than the raw-event retention were not counted", expired, stream)
        duplicates = len(events) - len(fresh) - expired
        self.stats.batches += 1
        self.stats.ingested += len(fresh)
        self.stats.duplicates += duplicates
        self.stats.expired += expired
        self.stats.last_commit = now
        for event in fresh:
            self.stats.lags.append(max(0.0, now - event.ts))
        if self.metrics:
            by_status = collections.Counter(event.status for event in fresh)
            for status, n in by_status.items():
                self.metrics["ingested"].labels(status).inc(n)
            self.metrics["duplicates"].inc(duplicates)
            self.metrics["expired"].inc(expired)
            lag_hist = self.metrics["lag"]
            for event in fresh[-50:]:   # a sample: the histogram need not see every event
                lag_hist.observe(max(0.0, now - event.ts))
