"""The simulation's part of ``nines gate``: is the projected year within the error budget?

The gate fails when the upper end of the 95 % interval of P(D > budget) exceeds the
threshold (default 5 %), or when the mean yearly downtime exceeds the budget.  When the
result carries calibration uncertainty (``p_exceed.parameter_interval``), the upper end
is the larger of the Monte Carlo bound and the parameter bound.
"""
from __future__ import annotations


def evaluate(result: dict, *, threshold: float = 0.05, budget_minutes: float = 52.56) -> tuple[bool, list[str]]:
    """Return (passed, reasons); reasons are one sentence each, empty when passed."""
    reasons: list[str] = []
    p = result.get("p_exceed") or {}
    upper = float(p.get("ci_high", 1.0))
    interval = p.get("parameter_interval")
    if interval:
        upper = max(upper, float(interval[1]))
    result_budget = result.get("budget_minutes", budget_minutes)
    if abs(float(result_budget) - budget_minutes) > 1e-9:
        reasons.append(f"the result was simulated against a {result_budget:g} min budget, "
                       f"not {budget_minutes:g} min; rerun nines sim run with that budget")
    if upper > threshold:
        reasons.append(f"P(yearly downtime > {budget_minutes:g} min) may be as high as "
                       f"{100 * upper:.2f} %, above the {100 * threshold:g} % threshold")
    mean = float((result.get("downtime_minutes") or {}).get("mean", float("inf")))
    if mean > budget_minutes:
        reasons.append(f"mean yearly downtime {mean:.2f} min exceeds the {budget_minutes:g} min budget")
    return (not reasons, reasons)
