"""Latency histograms: corrected (from the intended start) and raw (service time), per operation.

HdrHistogram (``hdrh``) in microseconds, 1 µs .. 1 h, 3 significant digits. Each
generator process keeps one :class:`LatencyBook`; a worker ships it as compressed
encodings and the runner merges books by *adding histograms* — percentiles of a merged
run come from the merged counts, never from averaging per-worker percentiles.

The closed-model cross-check HdrHistogram itself offers, ``record_corrected_value`` with
the expected interval, is kept as a third view (``raw_backfilled``) so the two ways of
correcting can be compared.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from hdrh.histogram import HdrHistogram

LOWEST_US, HIGHEST_US, DIGITS = 1, 3_600_000_000, 3
PERCENTILES = (50.0, 90.0, 99.0, 99.9)


def new_histogram() -> HdrHistogram:
    return HdrHistogram(LOWEST_US, HIGHEST_US, DIGITS)


def _us(ms: float) -> int:
    return min(HIGHEST_US, max(LOWEST_US, int(ms * 1000.0)))


@dataclass
class OperationHistograms:
    corrected: HdrHistogram = field(default_factory=new_histogram)
    raw: HdrHistogram = field(default_factory=new_histogram)
    raw_backfilled: HdrHistogram = field(default_factory=new_histogram)


class LatencyBook:
    """Histograms by operation name; ``expected_interval_ms`` enables the backfilled view."""

    def __init__(self, expected_interval_ms: float | None = None) -> None:
        self.ops: dict[str, OperationHistograms] = {}
        self.expected_interval_us = _us(expected_interval_ms) if expected_interval_ms else None

    def record(self, operation: str, latency_ms: float, service_ms: float) -> None:
        h = self.ops.get(operation)
        if h is None:
            h = self.ops[operation] = OperationHistograms()
        h.corrected.record_value(_us(latency_ms))
        h.raw.record_value(_us(service_ms))
        if self.expected_interval_us:
            h.raw_backfilled.record_corrected_value(_us(service_ms), self.expected_interval_us)

    def encode(self) -> dict[str, dict[str, str]]:
        return {op: {"corrected": h.corrected.encode().decode(), "raw": h.raw.encode().decode(),
                     "raw_backfilled": h.raw_backfilled.encode().decode()}
                for op, h in self.ops.items()}

    def add_encoded(self, encoded: dict[str, dict[str, str]]) -> None:
        for op, views in encoded.items():
            h = self.ops.setdefault(op, OperationHistograms())
            for view, blob in views.items():
                getattr(h, view).decode_and_add(blob.encode())

    def total(self) -> OperationHistograms:
        out = OperationHistograms()
        for h in self.ops.values():
            out.corrected.add(h.corrected)
            out.raw.add(h.raw)
            out.raw_backfilled.add(h.raw_backfilled)
        return out


def summarize(h: HdrHistogram) -> dict[str, float | int]:
    """Count, mean, max and the reported percentiles of one histogram, in milliseconds."""
    n = h.get_total_count()
    out: dict[str, float | int] = {"count": n}
    if not n:
        return out
    for p in PERCENTILES:
        out[f"p{p:g}_ms".replace(".", "_")] = h.get_value_at_percentile(p) / 1000.0
    out["mean_ms"] = round(h.get_mean_value() / 1000.0, 3)
    out["max_ms"] = h.get_max_value() / 1000.0
    return out
