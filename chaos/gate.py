"""The gate: a run directory's journals and simulation result, turned into one exit code.

Precedence (the first that applies wins; docs/gate.md):

====  ===================  ====================================================================
code  name                 when
====  ===================  ====================================================================
  2   USAGE                the run directory does not exist or is not a run directory
 20   LAB_ERROR            no journal, an unreadable journal, or a run that failed/was interrupted
 12   INVARIANT_VIOLATED   an experiment lost, duplicated, reordered or invented acknowledged data
 11   HYPOTHESIS_DEVIATED  an experiment's steady-state hypothesis or fault expectation failed
 10   BUDGET_AT_RISK       P(yearly downtime > budget) above the threshold, or the overall score
                           below ``--min-score``, or the experiments burned more than ``--max-burn``
  0   OK                   none of the above
====  ===================  ====================================================================

``evaluate`` is pure over loaded data; ``load_run`` reads the files.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chaos import scoring
from lab.errors import ExitCode, UsageError


@dataclass
class GateResult:
    code: ExitCode
    reasons: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    scores: dict[str, Any] = field(default_factory=dict)
    journals: list[dict] = field(default_factory=list)
    sim: dict | None = None

    def to_json(self) -> dict:
        return {"exit_code": int(self.code), "result": self.code.name.lower(), "reasons": self.reasons,
                "notes": self.notes, "scores": self.scores}


def load_run(run_dir: str | Path) -> tuple[list[dict], list[str], dict | None]:
    """(journals, read errors, sim result) of a run directory."""
    root = Path(run_dir)
    if not root.is_dir():
        raise UsageError(f"{root} is not a directory; pass the run directory `nines run` or "
                         f"`nines chaos run --out` wrote")
    paths = sorted(root.glob("experiments/*/journal.json"))
    if not paths and (root / "journal.json").exists():
        paths = [root / "journal.json"]
    if not paths and not (root / "run.json").exists() and not (root / "sim").exists():
        raise UsageError(f"{root} holds no run.json, journals or sim result; is it a run directory?")
    journals, errors = [], []
    for p in paths:
        try:
            data = json.loads(p.read_text())
            if not isinstance(data, dict) or data.get("schema") != "nineslab.journal/1":
                raise ValueError(f"schema {data.get('schema') if isinstance(data, dict) else None!r}")
            data["_path"] = str(p)
            journals.append(data)
        except (OSError, ValueError) as exc:
            errors.append(f"{p}: unreadable journal ({exc})")
    sim = None
    sim_path = root / "sim" / "result.json"
    if sim_path.exists():
        try:
            sim = json.loads(sim_path.read_text())
        except (OSError, ValueError) as exc:
            errors.append(f"{sim_path}: unreadable simulation result ({exc})")
    return journals, errors, sim


def sim_gate(sim: dict, *, threshold: float, budget_minutes: float) -> tuple[bool, list[str]]:
    try:
        from sim.gate import evaluate as sim_evaluate
    except ImportError:
        sim_evaluate = None
    if sim_evaluate is not None:
        passed, reasons = sim_evaluate(sim, threshold=threshold, budget_minutes=budget_minutes)
        return bool(passed), list(reasons)
    p = (sim.get("p_exceed") or {}).get("estimate")
    if p is None:
        return True, ["simulation result has no p_exceed; budget not judged from it"]
    if p > threshold:
        return False, [f"P(yearly downtime > {budget_minutes:g} min) = {p:.3f} > {threshold:g}"]
    return True, []


def evaluate(journals: list[dict], read_errors: list[str], sim: dict | None, *, budget_minutes: float = 52.56,
             threshold: float = 0.05, min_score: float | None = None, max_burn_minutes: float | None = None,
             require_sim: bool = False) -> GateResult:
    reasons: list[str] = []
    notes: list[str] = []
    scores = scoring.overall(journals)
    result = GateResult(ExitCode.OK, reasons, notes, scores, journals, sim)

    lab_errors = list(read_errors)
    if not journals:
        lab_errors.append("no experiment journal in the run directory")
    for j in journals:
        name = (j.get("experiment") or {}).get("name", j.get("_path"))
        if j.get("status") in ("failed", "interrupted") or j.get("verdict") == "error":
            errs = "; ".join(j.get("errors") or []) or j.get("status")
            lab_errors.append(f"{name}: the experiment did not run through ({errs})")
    if require_sim and sim is None:
        lab_errors.append("no simulation result (sim/result.json)")
    if lab_errors:
        result.code = ExitCode.LAB_ERROR
        reasons.extend(lab_errors)
        return result

    violated = [j for j in journals if j.get("verdict") == "invariant_violated"]
    deviated = [j for j in journals if j.get("verdict") == "deviated"]
    for j in violated:
        bad = [i["name"] for i in j.get("invariants", []) if i.get("ok") is False]
        reasons.append(f"{j['experiment']['name']}: invariant violated ({', '.join(bad)})")
    for j in deviated:
        why = "; ".join(j.get("reasons") or []) or "hypothesis deviated"
        reasons.append(f"{j['experiment']['name']}: {why}")
    if violated:
        result.code = ExitCode.INVARIANT_VIOLATED
        return result
    if deviated:
        result.code = ExitCode.HYPOTHESIS_DEVIATED
        return result

    at_risk: list[str] = []
    if sim is not None:
        ok, why = sim_gate(sim, threshold=threshold, budget_minutes=budget_minutes)
        (notes if ok else at_risk).extend(why)
    else:
        notes.append("no simulation result: the projected yearly downtime was not judged")
    if min_score is not None and scores.get("score") is not None and scores["score"] < min_score:
        at_risk.append(f"overall score {scores['score']:.2f} < {min_score:g}")
    burned = scores.get("budget_minutes_burned") or 0.0
    if max_burn_minutes is not None and burned > max_burn_minutes:
        at_risk.append(f"the experiments burned {burned:g} budget-minutes > {max_burn_minutes:g}")
    if at_risk:
        result.code = ExitCode.BUDGET_AT_RISK
        reasons.extend(at_risk)
    return result


def gate_run(run_dir: str | Path, **kw: Any) -> GateResult:
    journals, errors, sim = load_run(run_dir)
    return evaluate(journals, errors, sim, **kw)
