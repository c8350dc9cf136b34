"""Chat events as analytics counts them, and their per-second rollup (pure).

An event comes from stream CHAT (``chat.<region>``: a message was accepted, status
``sent``) or EVENTS (``events.delivered.<region>`` with ``latency_ms``: status
``delivered``; ``events.send_failed.<region>``: status ``failed``). Its key — what makes
counting idempotent — is ``<status>:<id>``, or the stream sequence when there is no id.

Rollup rows are ``(second, metric, label) -> value``:

    messages            ""        chat messages accepted
    messages_region     region    ... by recipient region
    status              sent | delivered | failed
    latency_bucket      upper bound in ms (LATENCY_BUCKETS_MS, "+Inf")   delivered events
    latency_sum         ""        sum of latency_ms
"""
from __future__ import annotations

import json
import math
from collections import defaultdict
from dataclasses import dataclass

LATENCY_BUCKETS_MS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 30000)
STATUSES = ("sent", "delivered", "failed")


@dataclass(frozen=True)
class Event:
    key: str
    status: str
    region: str
    conv: str | None
    latency_ms: float | None
    ts: float

    @property
    def second(self) -> int:
        return int(math.floor(self.ts))


class BadEvent(ValueError):
    """A message on a stream that is not a chat event analytics understands."""


def bucket_label(latency_ms: float) -> str:
    for bound in LATENCY_BUCKETS_MS:
        if latency_ms <= bound:
            return str(bound)
    return "+Inf"


def parse(subject: str, data: bytes, stream_seq: int, stream_ts: float) -> Event | None:
    """The event of one stream message; None for event types analytics does not count."""
    parts = subject.split(".")
    if parts[0] == "chat" and len(parts) == 2:
        status, region = "sent", parts[1]
    elif parts[0] == "events" and len(parts) >= 3:
        status = {"delivered": "delivered", "send_failed": "failed"}.get(parts[1])
        if status is None:
            return None
        region = parts[2]
    else:
        return None
    try:
        body = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadEvent(f"{subject} #{stream_seq}: not JSON ({exc})") from exc
    if not isinstance(body, dict):
        raise BadEvent(f"{subject} #{stream_seq}: not a JSON object")
    ident = body.get("id")
    key = f"{status}:{ident}" if isinstance(ident, (str, int)) and str(ident) else f"{status}:#{parts[0]}:{stream_seq}"
    ts = body.get("ts")
    if not isinstance(ts, (int, float)) or not math.isfinite(ts) or ts <= 0:
        ts = stream_ts
    latency = body.get("latency_ms")
    if status == "delivered":
        if not isinstance(latency, (int, float)) or not math.isfinite(latency) or latency < 0:
            latency = None
    else:
        latency = None
    conv = body.get("conv")
    region = str(body.get("to_region") or region) if status == "sent" else region
    return Event(key=key, status=status, region=region, conv=str(conv) if conv is not None else None,
                 latency_ms=float(latency) if latency is not None else None, ts=float(ts))


def rollup(events: list[Event]) -> dict[tuple[int, str, str], float]:
    """Per-second counts of ``events`` (already deduplicated)."""
    out: dict[tuple[int, str, str], float] = defaultdict(float)
    for e in events:
        s = e.second
        out[(s, "status", e.status)] += 1
        if e.status == "sent":
            out[(s, "messages", "")] += 1
            out[(s, "messages_region", e.region)] += 1
        elif e.status == "delivered" and e.latency_ms is not None:
            out[(s, "latency_bucket", bucket_label(e.latency_ms))] += 1
            out[(s, "latency_sum", "")] += e.latency_ms
    return dict(out)


def quantile_from_buckets(counts: dict[str, float], q: float) -> float | None:
    """The q-quantile (ms) of a latency histogram by linear interpolation inside the bucket."""
    total = sum(counts.values())
    if total <= 0:
        return None
    rank = q * total
    seen, lower = 0.0, 0.0
    for bound in LATENCY_BUCKETS_MS + (math.inf,):
        label = "+Inf" if bound == math.inf else str(bound)
        n = counts.get(label, 0.0)
        if n and seen + n >= rank:
            if bound == math.inf:
                return float(LATENCY_BUCKETS_MS[-1])
            return lower + (bound - lower) * ((rank - seen) / n)
        seen += n
        lower = bound if bound != math.inf else lower
    return float(LATENCY_BUCKETS_MS[-1])


def error_rate(sent: float, failed: float) -> float:
    total = sent + failed
    return failed / total if total else 0.0
