"""The steady-state hypothesis, judged: SLI probes over the samples of a phase (pure), merged
with the results of live probes (HTTP, SQL) the engine ran at given times.

Phases: ``before`` = load start .. first fault; ``during`` = sliding windows of each probe's
``window_seconds`` every ``interval_seconds`` while any fault is active (the first check of a
probe once its window is full: a fault's first second alone is noise); ``after`` = last fault
end + ``slo.settle_seconds`` .. load end. An SLI probe over a window with no samples fails:
no evidence is not evidence that the system was fine.
"""
from __future__ import annotations

from typing import Any

from chaos.slis import Sample, in_window, stats


def probe_result(probe: Any, value: Any, *, window: tuple[float, float] | None = None,
                 error: str | None = None) -> dict:
    met = error is None and probe.tolerance.holds(value)
    out = {"name": probe.name, "type": probe.type, "value": value, "tolerance": probe.tolerance.describe(),
           "met": bool(met)}
    if window is not None:
        out["window"] = [round(window[0], 3), round(window[1], 3)]
    if error:
        out["error"] = error
    return out


def sli_value(probe: Any, samples: list[Sample], start: float, end: float) -> Any:
    return stats(in_window(samples, start, end, probe.operation))[probe.sli]


def judge_window(probes: list[Any], samples: list[Sample], start: float, end: float, phase: str,
                 live: list[dict] | None = None) -> dict:
    """All probes of ``phase`` over one window: SLI probes computed, live ones looked up."""
    results = []
    for probe in probes:
        if phase not in probe.phases:
            continue
        if probe.type == "sli":
            results.append(probe_result(probe, sli_value(probe, samples, start, end), window=(start, end)))
    for r in live or []:
        if r.get("phase") == phase:
            results.append({k: v for k, v in r.items() if k != "phase"})
    return {"met": all(r["met"] for r in results), "probes": results, "window": [start, end]}


def judge_during(probes: list[Any], samples: list[Sample], fault_windows: list[tuple[float, float]],
                 interval: float, live: list[dict] | None = None) -> list[dict]:
    """One check per ``interval`` inside any fault window; each SLI probe over its own trailing window."""
    checks = []
    during_probes = [p for p in probes if "during" in p.phases and p.type == "sli"]
    live_by_t: dict[float, list[dict]] = {}
    for r in live or []:
        if r.get("phase") == "during":
            live_by_t.setdefault(round(r.get("t", 0.0), 3), []).append({k: v for k, v in r.items() if k != "phase"})
    times = set(live_by_t)
    for start, end in fault_windows:
        t = start + interval
        while t <= end + 1e-9:
            times.add(round(t, 3))
            t += interval
    for t in sorted(times):
        results = []
        for p in during_probes:
            start, end = _window_of(fault_windows, t)
            # judge full windows only: one second of a fault's first moments is noise, not a trend
            if t - start + 1e-9 < min(p.window_seconds, end - start):
                continue
            lo = max(t - p.window_seconds, start)
            results.append(probe_result(p, sli_value(p, samples, lo, t), window=(lo, t)))
        results.extend(live_by_t.get(t, []))
        if results:
            checks.append({"t": t, "met": all(r["met"] for r in results), "probes": results})
    return checks


def _window_of(windows: list[tuple[float, float]], t: float) -> tuple[float, float]:
    """The fault window ``t`` falls in (or the last one that started before it)."""
    started = [(s, e) for s, e in windows if s <= t]
    return max(started) if started else (t, t)


def probe_counts(hypothesis: dict) -> tuple[int, int]:
    """(passed, total) probe results over every phase, for the Litmus-style probe success %."""
    results = list(hypothesis.get("before", {}).get("probes", [])) + list(hypothesis.get("after", {}).get("probes", []))
    for check in hypothesis.get("during", []):
        results.extend(check.get("probes", []))
    return sum(1 for r in results if r.get("met")), len(results)


def met(hypothesis: dict) -> bool:
    return (hypothesis.get("before", {}).get("met", True) and hypothesis.get("after", {}).get("met", True)
            and all(c.get("met", True) for c in hypothesis.get("during", [])))
