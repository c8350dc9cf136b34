"""Scores: one in budget terms (ours), and a Litmus-style weighted probe score beside it.

**Budget score** of an experiment, 0..100 (docs/gate.md)::

    base  = 100 × max(0, 1 − budget_minutes_burned / allowance)     allowance: slo.budget_allowance_minutes
                                                                     (default 4.38, a month's 99.99 % budget)
    score = base            if the verdict is passed
            base × 0.5      if deviated
            0               if invariant_violated or error

**Overall** = Σ wᵢ·scoreᵢ / Σ wᵢ over experiments (weights 0..10, default 5).

**Litmus-style resilience score** (for familiarity; litmus-go chaosresult.go and ChaosCenter):
probe success % PSP = 100 if passed, else ⌊100·passed probes / probes⌋ (0 with no probes);
resilience = trunc₂(Σ wᵢ·PSPᵢ / Σ wᵢ).
"""
from __future__ import annotations

import math
from typing import Any

from chaos.hypothesis import probe_counts

DEFAULT_ALLOWANCE_MINUTES = 4.38
DEFAULT_WEIGHT = 5.0


def budget_score(verdict: str, burned_minutes: float, allowance_minutes: float = DEFAULT_ALLOWANCE_MINUTES) -> float:
    if verdict in ("invariant_violated", "error"):
        return 0.0
    base = 100.0 * max(0.0, 1.0 - (burned_minutes or 0.0) / allowance_minutes)
    if verdict == "deviated":
        base *= 0.5
    return round(base, 2)


def probe_success_percentage(verdict: str, passed: int, total: int) -> int:
    if verdict == "passed":
        return 100
    if total == 0:
        return 0
    return (100 * passed) // total


def _trunc2(x: float) -> float:
    return math.trunc(x * 100) / 100


def overall(journals: list[dict]) -> dict:
    """The overall scores of a set of journals (each with verdict, score, weight, hypothesis)."""
    if not journals:
        return {"score": None, "litmus_resilience_score": None, "experiments": 0, "verdicts": {}}
    weights = [float(j.get("weight", DEFAULT_WEIGHT)) for j in journals]
    total_w = sum(weights)
    scores = [float(j.get("score") or 0.0) for j in journals]
    psps = []
    for j in journals:
        passed, total = probe_counts(j.get("hypothesis") or {})
        psps.append(probe_success_percentage(j.get("verdict", "error"), passed, total))
    verdicts: dict[str, int] = {}
    for j in journals:
        verdicts[j.get("verdict", "error")] = verdicts.get(j.get("verdict", "error"), 0) + 1
    if total_w == 0:
        score = round(sum(scores) / len(scores), 2)
        litmus = _trunc2(sum(psps) / len(psps))
    else:
        score = round(sum(w * s for w, s in zip(weights, scores)) / total_w, 2)
        litmus = _trunc2(sum(w * p for w, p in zip(weights, psps)) / total_w)
    return {"score": score, "litmus_resilience_score": litmus, "experiments": len(journals),
            "verdicts": verdicts,
            "budget_minutes_burned": round(sum(float(j.get("budget_minutes_burned") or 0) for j in journals), 4),
            "per_experiment": [{"name": (j.get("experiment") or {}).get("name"), "verdict": j.get("verdict"),
                                "score": s, "psp": p, "weight": w}
                               for j, s, p, w in zip(journals, scores, psps, weights)]}


def experiment_weight(exp: Any) -> float:
    return float(getattr(exp, "weight", DEFAULT_WEIGHT))
