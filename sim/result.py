"""The ``nineslab.sim/1`` result: built from Monte Carlo totals, written as JSON, summarised.

The layout is documented in ``docs/simulation.md`` and ``docs/contracts.md`` section 4.
Reports and ``nines gate`` read it; it is a self-describing record (model file and hash,
overrides, seed, engine, versions) of one projection.
"""
from __future__ import annotations

import json
import math
import platform
from pathlib import Path

import numpy as np

from sim.burn_rate import PAGE_RULES
from sim.episodes import ChunkTotals
from sim.montecarlo import summarize_downtime

SCHEMA = "nineslab.sim/1"


def monthly_burn(monthly: np.ndarray, budget_minutes: float) -> dict:
    """Monthly budget burn-down and P(the yearly budget is exhausted by the end of month m)."""
    cumulative = np.cumsum(monthly, axis=1)
    mean_burn = monthly.mean(axis=0) if len(monthly) else np.zeros(12)
    return {
        "mean_burn": [round(float(x), 6) for x in mean_burn],
        "mean_cumulative": [round(float(x), 6) for x in np.cumsum(mean_burn)],
        "mean_budget_remaining": [round(float(budget_minutes - x), 6) for x in np.cumsum(mean_burn)],
        "p_exhausted_by_month": [float(x) for x in (cumulative > budget_minutes).mean(axis=0)]
        if len(monthly) else [0.0] * 12,
        "monthly_budget_minutes": budget_minutes / 12.0,
    }


def burn_rate_alerts(totals: ChunkTotals) -> dict:
    years = max(totals.burn_years, 1)
    return {
        "rules": [{"long_window_hours": r.long_hours, "short_window_hours": r.short_hours,
                   "burn_rate": r.burn} for r in PAGE_RULES],
        "pages_per_year": totals.pages / years,
        "incidents_per_year": totals.incidents / years,
        "mean_time_to_page_minutes": (totals.time_to_page_sum / totals.pages) if totals.pages else None,
        "paged_downtime_share": (totals.paged_downtime / totals.downtime[:totals.burn_years].sum()
                                 if totals.downtime[:totals.burn_years].sum() > 0 else None),
        "replayed_years": totals.burn_years,
    }


def build_result(*, totals: ChunkTotals, names: list[str], model_info: dict, engine: str, seed: int,
                 budget_minutes: float, slo: float, run_info: dict) -> dict:
    years = totals.years
    result = {"schema": SCHEMA, "model": model_info, "engine": engine, "years": years, "seed": seed,
              "slo": slo, "budget_minutes": budget_minutes}
    result.update(summarize_downtime(totals.downtime, budget_minutes))
    result["attribution"] = {n: float(m / years) for n, m in zip(names, totals.attribution)}
    result["failures_per_year"] = {n: float(c / years) for n, c in zip(names, totals.failures)}
    result["monthly"] = monthly_burn(totals.monthly, budget_minutes)
    result["burn_rate_alerts"] = burn_rate_alerts(totals)
    result["sensitivities"] = []
    result["calibration"] = {}
    result["run"] = dict(run_info, versions=_versions())
    return result


def _versions() -> dict:
    import importlib.metadata as md

    out = {"python": platform.python_version()}
    for name in ("nineslab", "simpy", "numpy"):
        try:
            out[name] = md.version(name)
        except md.PackageNotFoundError:  # pragma: no cover
            out[name] = None
    return out


def _clean(value):
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if isinstance(value, (np.floating, float)):
        return None if not math.isfinite(float(value)) else float(value)
    if isinstance(value, np.integer):
        return int(value)
    return value


def write_result(result: dict, path: str | Path) -> Path:
    """Write the result JSON (creating parent directories); return the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(_clean(result), indent=2, sort_keys=False) + "\n")
    return path


def summary_lines(result: dict) -> list[str]:
    """A short human summary of a result (the CLI prints it)."""
    d, p = result["downtime_minutes"], result["p_exceed"]
    budget = result["budget_minutes"]
    lines = [
        f"{result['years']:,} simulated years ({result['engine']} engine, seed {result['seed']}), "
        f"budget {budget:g} min/yr",
        f"yearly downtime: mean {d['mean']:.2f} ± {d['stderr']:.2f} min, p50 {d['p50']:.2f}, "
        f"p95 {d['p95']:.2f}, p99 {d['p99']:.2f}",
    ]
    blown = f"P(blown year) = {100 * p['estimate']:.2f} % [{100 * p['ci_low']:.2f}–{100 * p['ci_high']:.2f} %]"
    if p.get("parameter_interval"):
        lo, hi = p["parameter_interval"]
        blown += f", with calibration uncertainty [{100 * lo:.1f}–{100 * hi:.1f} %]"
    lines.append(blown)
    top = sorted(result["attribution"].items(), key=lambda kv: -kv[1])[:4]
    lines.append("budget eaters: " + ", ".join(f"{n} {m:.2f} min" for n, m in top))
    alerts = result["burn_rate_alerts"]
    ttp = alerts["mean_time_to_page_minutes"]
    lines.append(f"pages/yr {alerts['pages_per_year']:.2f}"
                 + (f", mean time to page {ttp * 60:.1f} s" if ttp is not None else ""))
    w = result.get("what_if")
    if w:
        changes = ", ".join(f"{k}={v}" for k, v in w["changes"].items())
        se = w["difference_stderr"]
        lines.append(f"what-if {changes}: {w['difference_minutes']:+.2f}"
                     + (f" ± {se:.2f}" if se is not None else "")
                     + f" min/yr against the baseline {w['baseline_mean_minutes']:.2f} min (same random numbers)")
    if result.get("sensitivities"):
        s = result["sensitivities"][0]
        lines.append(f"most sensitive: {s['parameter']} (swing {s['swing_minutes']:.2f} min/yr)")
    gate = result.get("gate") or {}
    if gate:
        lines.append("gate: " + ("pass" if gate.get("passed") else "FAIL: " + "; ".join(gate.get("reasons", []))))
    return lines
