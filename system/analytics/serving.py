"""The serving layer's query language (pure): what ``/metrics/query`` accepts and how the
merged per-second rows become a series of ``step``-second points.

Metrics: ``messages``, ``messages.<region>``, ``messages_per_second``, ``sent``,
``delivered``, ``failed``, ``error_rate``, ``latency_p50``, ``latency_p90``, ``latency_p99``,
``latency_mean``.
"""
from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass

from system.analytics.model import error_rate, quantile_from_buckets

MAX_POINTS = 10_000
MAX_TIME = 1e11   # unix seconds, year 5138
SIMPLE = ["messages", "messages_per_second", "sent", "delivered", "failed", "error_rate",
          "latency_p50", "latency_p90", "latency_p99", "latency_mean"]


class QueryError(ValueError):
    """A query the API answers with 422."""


@dataclass(frozen=True)
class Query:
    name: str
    rollup_metric: str       # which rollup rows to read
    label: str | None        # None: every label
    kind: str                # sum | rate | error_rate | quantile | mean
    q: float = 0.0


def parse_metric(name: str, regions: list[str]) -> Query:
    if name in ("messages",):
        return Query(name, "messages", "", "sum")
    if name == "messages_per_second":
        return Query(name, "messages", "", "rate")
    if name.startswith("messages."):
        region = name.split(".", 1)[1]
        if region not in regions:
            raise QueryError(f"unknown region {region!r} in metric {name!r}: use one of {', '.join(regions)}")
        return Query(name, "messages_region", region, "sum")
    if name in ("sent", "delivered", "failed"):
        return Query(name, "status", name, "sum")
    if name == "error_rate":
        return Query(name, "status", None, "error_rate")
    if name in ("latency_p50", "latency_p90", "latency_p99"):
        return Query(name, "latency_bucket", None, "quantile", int(name[-2:]) / 100)
    if name == "latency_mean":
        return Query(name, "latency", None, "mean")
    choices = ", ".join(SIMPLE + [f"messages.{r}" for r in regions])
    raise QueryError(f"unknown metric {name!r}: use one of {choices}")


def buckets(start: float, end: float, step: float) -> tuple[int, int, int]:
    """Whole-second bounds and the number of points; QueryError when the window is bad."""
    if not all(math.isfinite(v) for v in (start, end, step)):
        raise QueryError("from, to and step must be finite numbers")
    if not (0 <= start <= MAX_TIME and 0 <= end <= MAX_TIME):
        raise QueryError(f"from and to must be unix seconds between 0 and {MAX_TIME:.0f}")
    if step < 1:
        raise QueryError(f"step must be at least 1 second (got {step})")
    if end <= start:
        raise QueryError(f"'to' ({end}) must be after 'from' ({start})")
    first, last = int(math.floor(start)), int(math.ceil(end))
    n = math.ceil((last - first) / int(step))
    if n > MAX_POINTS:
        raise QueryError(f"the query asks for {n} points; at most {MAX_POINTS}: use a larger step")
    return first, last, n


def series(query: Query, rows: list[tuple[int, str, float]], first: int, step: int, n: int) -> list[dict]:
    """Fold per-second (second, label, value) rows into ``n`` points of ``step`` seconds."""
    per: list[dict[str, float]] = [defaultdict(float) for _ in range(n)]
    for second, label, value in rows:
        i = (second - first) // step
        if 0 <= i < n:
            per[i][label] += value
    points = []
    for i, acc in enumerate(per):
        t = first + i * step
        if query.kind == "sum":
            v: float | None = sum(acc.values())
        elif query.kind == "rate":
            v = sum(acc.values()) / step
        elif query.kind == "error_rate":
            v = error_rate(acc.get("sent", 0.0), acc.get("failed", 0.0))
        elif query.kind == "quantile":
            v = quantile_from_buckets(acc, query.q)
        else:  # mean: latency_sum over the count of the buckets
            count = sum(val for lab, val in acc.items() if lab.startswith("b:"))
            v = acc.get("sum", 0.0) / count if count else None
        points.append({"t": t, "value": v})
    return points
