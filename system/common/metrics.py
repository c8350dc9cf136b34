"""Prometheus metrics helpers: one registry per service, and the text exposition for /metrics.

Breaker and health states are exported as ``nineslab_state{kind, subject, state}`` = 1 for the
current state and 0 for the others, plus a counter of transitions, so a scrape shows both
where a mechanism is and how often it moved.
"""
from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

STATES = {"breaker": ("closed", "open", "half_open"), "health": ("healthy", "unhealthy", "unknown"),
          "failover": ("failed_over", "restored")}


class ServiceMetrics:
    def __init__(self, service: str) -> None:
        self.registry = CollectorRegistry()
        self.service = service
        self.state = Gauge("nineslab_state", "Current state of an HA mechanism (1 = in this state)",
                           ["kind", "subject", "state"], registry=self.registry)
        self.transitions = Counter("nineslab_state_transitions", "State changes of HA mechanisms",
                                   ["kind", "subject", "state"], registry=self.registry)

    def set_state(self, kind: str, subject: str, state: str) -> None:
        for s in STATES.get(kind, (state,)):
            self.state.labels(kind, subject, s).set(1 if s == state else 0)
        self.state.labels(kind, subject, state).set(1)
        self.transitions.labels(kind, subject, state).inc()

    def counter(self, name: str, doc: str, labels: tuple[str, ...] = ()) -> Counter:
        return Counter(name, doc, list(labels), registry=self.registry)

    def gauge(self, name: str, doc: str, labels: tuple[str, ...] = ()) -> Gauge:
        return Gauge(name, doc, list(labels), registry=self.registry)

    def histogram(self, name: str, doc: str, buckets: tuple[float, ...]) -> Histogram:
        return Histogram(name, doc, buckets=buckets, registry=self.registry)

    def render(self) -> tuple[bytes, str]:
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
