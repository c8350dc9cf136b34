"""The dashboard snapshot: what the page shows each second — active conversations,
messages per second, error rate, p99 latency, totals and alerts — computed from the
serving layer. ``Snapshotter.tick`` computes it, evaluates the alert and the consumer lag,
and records their transitions; the API pushes it to every connected WebSocket."""
from __future__ import annotations

import logging
import time
from typing import Callable

from system.analytics.alerts import ErrorRateAlert, LagTracker
from system.analytics.config import AnalyticsSettings
from system.analytics.consumer import IngestStats
from system.analytics.model import error_rate, quantile_from_buckets
from system.analytics.store import AnalyticsStore

log = logging.getLogger("nineslab.analytics")


async def window(store: AnalyticsStore, metric: str, start: int, end: int) -> dict[str, float]:
    out: dict[str, float] = {}
    for _second, label, value in await store.merged(metric, None, start, end):
        out[label] = out.get(label, 0.0) + value
    return out


class Snapshotter:
    def __init__(self, store: AnalyticsStore, settings: AnalyticsSettings, stats: IngestStats, *,
                 events=None, metrics: dict | None = None, clock: Callable[[], float] = time.time) -> None:
        self.store, self.settings, self.stats = store, settings, stats
        self.events, self.metrics, self.clock = events, metrics or {}, clock
        self.alert = ErrorRateAlert(settings.alert_threshold, settings.alert_min_events)
        self.lag = LagTracker(settings.lag_alarm_seconds)
        self.latest: dict | None = None

    async def tick(self) -> dict:
        s, now = self.settings, self.clock()
        end = int(now)  # the current second counts too: the page should move at once
        messages = await window(self.store, "messages", end - s.rate_window_seconds + 1, end + 1)
        status = await window(self.store, "status", end - s.alert_window_seconds + 1, end + 1)
        latency = await window(self.store, "latency_bucket", end - s.latency_window_seconds + 1, end + 1)
        active = await self.store.active_conversations(now - s.active_window_seconds)
        totals = await self.store.totals()
        sent, failed = status.get("sent", 0.0), status.get("failed", 0.0)
        change = self.alert.evaluate(sent, failed, now)
        if change:
            detail = f"error rate {self.alert.state.rate:.1%} over {s.alert_window_seconds} s " \
                     f"(threshold {s.alert_threshold:.0%})"
            log.warning("alert error_rate %s: %s", change, detail)
            if self.events:
                self.events.emit("alert", "error_rate", change, detail)
        self._check_lag(now)
        p99 = quantile_from_buckets(latency, 0.99)
        snap = {
            "ts": now,
            "active_conversations": active,
            "messages_per_second": round(sum(messages.values()) / s.rate_window_seconds, 3),
            "error_rate": round(error_rate(sent, failed), 6),
            "p99_latency_ms": round(p99, 3) if p99 is not None else None,
            "totals": {"messages": totals.get(("messages", ""), 0.0),
                       "sent": totals.get(("status", "sent"), 0.0),
                       "delivered": totals.get(("status", "delivered"), 0.0),
                       "failed": totals.get(("status", "failed"), 0.0)},
            "alerts": [self.alert.as_dict()],
            "consumer": {"pending": dict(self.stats.pending), "lagging": self.lag.lagging,
                         "ingested": self.stats.ingested},
        }
        if self.metrics:
            self.metrics["alert"].labels("error_rate").set(1 if self.alert.state.firing else 0)
            self.metrics["error_rate"].set(snap["error_rate"])
            self.metrics["mps"].set(snap["messages_per_second"])
        self.latest = snap
        return snap

    def _check_lag(self, now: float) -> None:
        pending = sum(self.stats.pending.values())
        oldest = [t for t in self.stats.oldest_unacked_ts.values() if t is not None]
        lag_seconds = now - min(oldest) if oldest else 0.0
        if self.metrics:
            for stream, n in self.stats.pending.items():
                self.metrics["pending"].labels(stream).set(n)
        change = self.lag.evaluate(pending + (1 if oldest else 0), lag_seconds)
        if change and self.events:
            self.events.emit("consumer", "analytics", change,
                             f"{pending} pending, oldest unprocessed {lag_seconds:.1f} s old")
