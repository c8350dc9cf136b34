"""Per-second series of an experiment, from its journal or, failing that, its samples.

Pure functions over :class:`~reports.loader.ExperimentView` data: the timeline plot wants
success rate and p50/p99 latency per second, the throughput plot requests per second by
outcome. Times are seconds since the experiment started.
"""
from __future__ import annotations

import dataclasses

import numpy as np

from reports.loader import ExperimentView, Samples


@dataclasses.dataclass
class SliSeries:
    t: np.ndarray
    success_pct: np.ndarray
    p50_ms: np.ndarray
    p99_ms: np.ndarray
    source: str                       # "journal" or "samples.csv"


@dataclasses.dataclass
class Throughput:
    t: np.ndarray                     # second bins
    by_outcome: dict[str, np.ndarray]  # requests per second: ok, error, dropped
    source: str


@dataclasses.dataclass
class Marks:
    faults: list[tuple[float, float, str]]     # (start, end, label)
    detections: list[float]
    recoveries: list[float]


def sli_series(exp: ExperimentView) -> SliSeries | None:
    rows = ((exp.journal or {}).get("slis") or {}).get("per_second") or []
    rows = [r for r in rows if isinstance(r, dict) and isinstance(r.get("t"), (int, float))]
    if rows:
        t = np.array([exp.relative(float(r["t"])) for r in rows])
        return SliSeries(
            t=t, success_pct=100 * np.array([_f(r.get("availability")) for r in rows]),
            p50_ms=np.array([_f(r.get("p50_ms")) for r in rows]),
            p99_ms=np.array([_f(r.get("p99_ms")) for r in rows]), source="journal")
    if exp.samples is None or not len(exp.samples):
        return None
    return _series_from_samples(exp.samples, exp.started_at)


def throughput(exp: ExperimentView) -> Throughput | None:
    s = exp.samples
    finite = np.isfinite(s.start) if s is not None else None
    if s is not None and finite.any():
        rel = s.start - exp.started_at
        lo, hi = float(np.min(rel[finite])), float(np.max(rel[finite]))
        span = _journal_span(exp)
        if span is not None:            # stray rows far outside the load window would squash the plot
            lo, hi = max(lo, span[0] - 1.0), min(hi, span[1] + 1.0)
        if hi < lo:
            lo, hi = float(np.min(rel[finite])), float(np.max(rel[finite]))
        if not (np.isfinite(lo) and np.isfinite(hi)):
            return None
        bins = np.arange(np.floor(lo), np.ceil(hi) + 1.0)
        if len(bins) < 2:
            bins = np.array([bins[0], bins[0] + 1.0])
        out = {}
        for outcome in ("ok", "error", "dropped"):
            out[outcome], _ = np.histogram(rel[s.outcome == outcome], bins)
        other = ~np.isin(s.outcome, ["ok", "error", "dropped"])
        if other.any():                 # an outcome outside the contract is shown, not dropped
            out["other"], _ = np.histogram(rel[other], bins)
        return Throughput(bins[:-1], out, "samples.csv")
    rows = ((exp.journal or {}).get("slis") or {}).get("per_second") or []
    rows = [r for r in rows if isinstance(r, dict) and isinstance(r.get("t"), (int, float))]
    if not rows:
        return None
    t = np.array([exp.relative(float(r["t"])) for r in rows])
    req = np.array([_f(r.get("requests"), 0.0) for r in rows])
    err = np.array([_f(r.get("errors"), 0.0) for r in rows])
    return Throughput(t, {"ok": req - err, "error": err}, "journal")


def _journal_span(exp: ExperimentView) -> tuple[float, float] | None:
    rows = ((exp.journal or {}).get("slis") or {}).get("per_second") or []
    ts = [float(r["t"]) for r in rows if isinstance(r, dict) and isinstance(r.get("t"), (int, float))]
    return (exp.relative(min(ts)), exp.relative(max(ts)) + 1.0) if ts else None


def marks(exp: ExperimentView) -> Marks:
    j = exp.journal or {}
    measured = {str(m.get("fault_id")): m for m in j.get("measurements") or [] if isinstance(m, dict)}
    faults, det, rec = [], [], []
    for f in j.get("faults") or []:
        if not isinstance(f, dict) or not isinstance(f.get("start"), (int, float)):
            continue
        start = exp.relative(float(f["start"]))
        end = exp.relative(float(f["end"])) if isinstance(f.get("end"), (int, float)) else None
        if end is None:
            end = start
        faults.append((start, end, f"{f.get('kind', '')} {f.get('target') or ''}".strip()))
        m = measured.get(str(f.get("id")), {})
        if isinstance(m.get("detection_seconds"), (int, float)):
            det.append(start + float(m["detection_seconds"]))
        if isinstance(m.get("recovery_seconds"), (int, float)):
            rec.append(end + float(m["recovery_seconds"]))
    return Marks(faults, det, rec)


def _series_from_samples(s: Samples, t0: float) -> SliSeries:
    """Per-second success rate and p50/p99 latency of successful requests (as chaos/slis.py does)."""
    sec = np.floor(s.start - t0)
    order = np.argsort(sec, kind="stable")
    sec, ok, lat = sec[order], (s.outcome == "ok")[order], s.latency_ms[order]
    keys, first = np.unique(sec, return_index=True)
    success, p50, p99 = [], [], []
    for ok_part, lat_part in zip(np.split(ok, first[1:]), np.split(lat, first[1:])):
        success.append(100.0 * ok_part.mean())
        good = lat_part[ok_part & ~np.isnan(lat_part)]
        p50.append(np.percentile(good, 50) if len(good) else np.nan)
        p99.append(np.percentile(good, 99) if len(good) else np.nan)
    return SliSeries(keys, np.array(success), np.array(p50), np.array(p99), "samples.csv")


def _f(v, default: float = np.nan) -> float:
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else default
