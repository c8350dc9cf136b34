"""The load signal: what each replica's Prometheus ``/metrics`` says, turned into one number a
region (the total of the metric the policy scales on).

``connections`` is the ``chat_connections`` gauge; ``messages_per_second`` is the rate of the
``chat_messages_acked`` counter between two scrapes of the same process (a restarted replica's
counter starts again at zero: its first scrape gives no rate). A replica that does not answer
is left out and the others' average stands in for it; when none answers there is no signal.
"""
from __future__ import annotations

from dataclasses import dataclass

from prometheus_client.parser import text_string_to_metric_families

GAUGE, COUNTER = "chat_connections", "chat_messages_acked"


@dataclass(frozen=True)
class Scrape:
    ts: float
    connections: float
    acked: float


def parse(text: str, ts: float) -> Scrape:
    values = {GAUGE: 0.0, COUNTER: 0.0}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            name = sample.name.removesuffix("_total")
            if name in values and not sample.name.endswith("_created"):
                values[name] += sample.value
    return Scrape(ts, values[GAUGE], values[COUNTER])


def per_replica(metric: str, now: dict[str, Scrape], before: dict[str, Scrape]) -> dict[str, float]:
    """The metric of each replica that answered (and, for a rate, was scraped before)."""
    if metric == "connections":
        return {name: s.connections for name, s in now.items()}
    out = {}
    for name, s in now.items():
        prev = before.get(name)
        if prev is not None and s.ts > prev.ts and s.acked >= prev.acked:
            out[name] = (s.acked - prev.acked) / (s.ts - prev.ts)
    return out


def region_load(values: dict[str, float], replicas: int) -> float | None:
    """The region's total, with the answering replicas' average for those that did not answer."""
    if not values:
        return None
    return sum(values.values()) / len(values) * replicas
