"""Service level indicators from the load generator's samples (contracts §7): per window and
per second. Pure functions over ``Sample`` rows, plus ``read_samples`` to load a CSV.

A sample counts in the window of its *intended* time (when the user wanted to act), so a
request that was stuck for ten seconds in an outage counts where the outage was, and an
arrival the generator could not even start (``dropped``) counts as a failure.
Availability = ok / all; latency percentiles are over successful requests.
"""
from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import numpy as np

from lab.errors import LabError


@dataclass(frozen=True)
class Sample:
    intended_ts: float
    latency_ms: float
    outcome: str                 # ok | error | dropped
    operation: str = ""
    region: str = ""
    start_ts: float = 0.0
    end_ts: float = 0.0
    service_ms: float = 0.0
    error: str = ""

    @property
    def ok(self) -> bool:
        return self.outcome == "ok"


def _float(value: str | None, default: float = 0.0) -> float:
    try:
        return float(value) if value not in (None, "") else default
    except ValueError:
        return default


def parse_sample(row: dict[str, str]) -> Sample:
    intended = _float(row.get("intended_ts"), _float(row.get("start_ts")))
    return Sample(intended_ts=intended, latency_ms=_float(row.get("latency_ms")),
                  outcome=(row.get("outcome") or "error").strip(), operation=row.get("operation") or "",
                  region=row.get("region") or "", start_ts=_float(row.get("start_ts")),
                  end_ts=_float(row.get("end_ts")), service_ms=_float(row.get("service_ms")),
                  error=row.get("error") or "")


def read_samples(path: str | Path) -> list[Sample]:
    """Every row of a samples.csv, sorted by intended time; a missing file is no samples."""
    p = Path(path)
    if not p.exists():
        return []
    try:
        with p.open(newline="") as fh:
            rows = [parse_sample(r) for r in csv.DictReader(fh)]
    except (OSError, csv.Error) as exc:
        raise LabError(f"cannot read the samples file {p}: {exc}") from exc
    rows.sort(key=lambda s: s.intended_ts)
    return rows


def in_window(samples: Iterable[Sample], start: float, end: float, operation: str | None = None) -> list[Sample]:
    return [s for s in samples if start <= s.intended_ts < end and (operation is None or s.operation == operation)]


def stats(samples: list[Sample]) -> dict:
    """requests, errors, availability, error_rate and latency percentiles of some samples.

    With no samples availability and percentiles are None: no evidence either way.
    """
    n = len(samples)
    ok_lat = np.array([s.latency_ms for s in samples if s.ok], dtype=float)
    errors = sum(1 for s in samples if not s.ok)

    def pct(q: float) -> float | None:
        return round(float(np.percentile(ok_lat, q)), 3) if ok_lat.size else None

    return {"requests": n, "errors": errors,
            "availability": round((n - errors) / n, 6) if n else None,
            "error_rate": round(errors / n, 6) if n else None,
            "p50_ms": pct(50), "p95_ms": pct(95), "p99_ms": pct(99)}


def window_stats(samples: list[Sample], start: float, end: float, operation: str | None = None) -> dict:
    out = stats(in_window(samples, start, end, operation))
    out.update(start=start, end=end)
    return out


def per_second(samples: list[Sample], t0: float, t_end: float) -> list[dict]:
    """One stats row per whole second from ``t0``; ``t`` is seconds since ``t0``."""
    seconds = max(0, math.ceil(t_end - t0))
    buckets: list[list[Sample]] = [[] for _ in range(seconds)]
    for s in samples:
        i = int(math.floor(s.intended_ts - t0))
        if 0 <= i < seconds:
            buckets[i].append(s)
    rows = []
    for i, bucket in enumerate(buckets):
        row = {"t": float(i)}
        row.update(stats(bucket))
        rows.append(row)
    return rows
