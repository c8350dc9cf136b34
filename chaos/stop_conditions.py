"""Stop conditions, judged live from the load generator's running counters (pure).

The engine keeps ``series``: per whole second since t0, the requests that *completed* in it
and how many of those failed (the generator's progress counters, so completion time rather
than intended time — good enough to pull the brake, the journal uses exact samples later).
"""
from __future__ import annotations

from typing import Any


def live_availability(row: dict) -> float | None:
    n = row.get("ok", 0) + row.get("error", 0) + row.get("dropped", 0)
    return row.get("ok", 0) / n if n else None


def recent_availability(series: list[dict], seconds: int) -> float | None:
    """Availability of the last ``seconds`` rows together (the live view's figure: one second
    alone swings with whatever happens to complete in it, e.g. a burst of timeouts)."""
    recent = series[-seconds:]
    return live_availability({k: sum(r.get(k, 0) for r in recent) for k in ("ok", "error", "dropped")})


def stop_reason(series: list[dict], stop: Any, slo: Any) -> str | None:
    """Why to abort now, or None. ``series`` rows: {t, ok, error, dropped} (complete seconds only)."""
    if stop.max_budget_minutes is not None:
        down = sum(1 for r in series if (a := live_availability(r)) is not None and a < slo.availability)
        if down / 60.0 > stop.max_budget_minutes:
            return (f"{down} s of downtime burned {down / 60:.3f} budget-minutes, more than the "
                    f"{stop.max_budget_minutes:g} allowed")
    if stop.min_availability is not None:
        need = int(stop.for_seconds)
        recent = [live_availability(r) for r in series[-need:]]
        if len(recent) >= need and all(a is not None and a < stop.min_availability for a in recent):
            return f"availability below {stop.min_availability:g} for {need} s in a row"
    return None


def accumulate(series: list[dict], t: float, delta: dict[str, int]) -> None:
    """Add a counter delta observed at ``t`` (seconds since t0) to its second's row."""
    second = int(t)
    if series and series[-1]["t"] == second:
        row = series[-1]
    else:
        row = {"t": second, "ok": 0, "error": 0, "dropped": 0}
        series.append(row)
    for k in ("ok", "error", "dropped"):
        row[k] += delta.get(k, 0)
