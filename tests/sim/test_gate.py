"""The simulation gate: upper confidence bound of P(D > budget) and the mean against the budget."""
from __future__ import annotations

from sim.gate import evaluate


def _result(estimate=0.02, ci_high=0.03, mean=20.0, **extra):
    p = {"estimate": estimate, "ci_low": 0.01, "ci_high": ci_high, "confidence": 0.95}
    p.update(extra)
    return {"budget_minutes": 52.56, "p_exceed": p, "downtime_minutes": {"mean": mean}}


def test_passes_when_bound_and_mean_are_within():
    assert evaluate(_result()) == (True, [])


def test_fails_on_the_upper_bound_not_the_estimate():
    passed, reasons = evaluate(_result(estimate=0.04, ci_high=0.06))
    assert not passed and "6.00 %" in reasons[0] and "5 % threshold" in reasons[0]
    assert evaluate(_result(estimate=0.04, ci_high=0.06), threshold=0.1)[0]


def test_fails_when_the_mean_exceeds_the_budget():
    passed, reasons = evaluate(_result(mean=60.0))
    assert not passed and "mean yearly downtime 60.00 min" in reasons[0]


def test_calibration_uncertainty_widens_the_bound():
    passed, reasons = evaluate(_result(parameter_interval=[0.01, 0.09]))
    assert not passed and "9.00 %" in reasons[0]
