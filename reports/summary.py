"""The key figures of a run: the pure core every output (HTML, Markdown, JSON, JUnit) shares.

:func:`summarise` turns a :class:`~reports.loader.RunView` into a :class:`Summary` that
answers the three first-screen questions — is the budget safe (score and verdict), what
broke and for how long, was any data lost — without any I/O. Missing inputs make the
verdict ``INCOMPLETE`` rather than safe: a report never claims what it has not seen.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Any

from reports.loader import ExperimentView, RunView

DEFAULT_BUDGET_MINUTES = 52.56

# Verdicts, worst first; the first that applies is the headline. After the data verdicts the
# order is that of `nines gate` (chaos/gate.py): lab error > deviated > budget at risk.
DATA_LOST = "DATA LOST"
INVARIANT_VIOLATED = "INVARIANT VIOLATED"
BUDGET_AT_RISK = "BUDGET AT RISK"
DEVIATED = "HYPOTHESIS DEVIATED"
INCOMPLETE = "INCOMPLETE"
SAFE = "BUDGET SAFE"
VERDICT_CLASS = {DATA_LOST: "bad", INVARIANT_VIOLATED: "bad", BUDGET_AT_RISK: "bad", DEVIATED: "warn",
                 INCOMPLETE: "warn", SAFE: "good"}


@dataclasses.dataclass
class FaultRow:
    id: str
    kind: str
    target: str
    failure_mode: str
    duration_seconds: float | None
    detection_seconds: float | None
    failover_seconds: float | None
    recovery_seconds: float | None
    downtime_seconds: float | None
    measured: bool               # a measurement exists for this fault
    rolled_back: bool | None     # False: the fault may still be in place


@dataclasses.dataclass
class ExperimentRow:
    name: str
    title: str
    status: str
    verdict: str
    score: float | None
    faults: list[FaultRow]
    detection_seconds: float | None      # worst (largest) of the faults; None: never / not measured
    detection_never: bool                # some measured fault was never detected
    recovery_seconds: float | None
    recovery_never: bool
    downtime_seconds: float | None
    availability_during: float | None
    data_lost: str                       # yes | no | unknown
    data_problems: list[str]             # "chat.no_loss: 3 lost (e.g. m-17, m-42)": any violated invariant
    deviations: list[str]
    errors: list[str]
    note: str = ""                       # without a journal: why there is none
    judgement: str = ""                  # the control-against-experiment comparison, one line

    @property
    def why_not_completed(self) -> str:
        if self.note:                  # no journal: what the loader found instead
            return self.note
        return f"experiment {self.status}" + (f": {self.errors[0]}" if self.errors else "")

    @property
    def broke(self) -> str:
        if not self.faults:
            return "—" if self.note else "nothing injected"
        return "; ".join(f"{f.kind} {f.target}".strip() for f in self.faults)

    @property
    def fault_seconds(self) -> float | None:
        d = [f.duration_seconds for f in self.faults if f.duration_seconds is not None]
        return sum(d) if d else None


@dataclasses.dataclass
class Budget:
    budget_minutes: float
    mean: float | None
    p50: float | None
    p95: float | None
    p99: float | None
    stderr: float | None
    p_exceed: float | None
    p_exceed_low: float | None
    p_exceed_high: float | None
    confidence: float
    gate_passed: bool | None
    gate_reasons: list[str]
    years: int | None
    engine: str | None
    parameter_interval: tuple[float, float] | None = None   # P(D > budget) under calibration uncertainty
    pages_per_year: float | None = None
    measured: list[dict[str, Any]] = dataclasses.field(default_factory=list)   # calibrated parameters
    defaults: int = 0                                                          # parameters still at defaults

    @property
    def score(self) -> float | None:
        """100 × P(a year stays within budget): the budget score of the first screen."""
        return None if self.p_exceed is None else 100.0 * (1.0 - self.p_exceed)


@dataclasses.dataclass
class Summary:
    run_name: str
    verdict: str
    verdict_class: str
    reasons: list[str]                  # why the verdict, one line each
    budget: Budget | None
    experiments: list[ExperimentRow]
    experiment_score: float | None
    data_lost: str                      # yes | no | unknown
    missing: list[tuple[str, str]]
    run_errors: list[str]
    run_status: str
    profile: str | None
    seed: Any

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def summarise(view: RunView) -> Summary:
    rows = [_experiment_row(e) for e in view.experiments]
    budget = _budget(view.sim)
    exp_score = _overall_score([e.journal for e in view.experiments if e.journal])
    lost = "yes" if any(r.data_lost == "yes" for r in rows) else (
        "no" if rows and all(r.data_lost == "no" for r in rows) else "unknown")
    missing = [(m.what, m.why) for m in view.all_missing]
    verdict, reasons = _verdict(rows, budget, lost, missing, view.run_errors)
    run = view.run or {}
    return Summary(
        run_name=view.name, verdict=verdict, verdict_class=VERDICT_CLASS[verdict], reasons=reasons,
        budget=budget, experiments=rows,
        experiment_score=exp_score,
        data_lost=lost, missing=missing, run_errors=view.run_errors,
        run_status=str(run.get("status") or ("unknown" if view.run is None else "completed")),
        profile=run.get("profile"), seed=run.get("seed"))


def _verdict(rows: list[ExperimentRow], budget: Budget | None, lost: str,
             missing: list[tuple[str, str]], run_errors: list[str]) -> tuple[str, list[str]]:
    """The headline verdict, worst first, and every reason behind it (the headline's own first)."""
    data = [f"{r.name}: {p}" for r in rows for p in r.data_problems]
    at_risk = budget is not None and budget.gate_passed is False
    risk = ([f"budget: {x}" for x in budget.gate_reasons] or ["budget: the sim gate failed"]) if at_risk else []
    incomplete = [f"run error: {e}" for e in run_errors]
    incomplete += [f"{r.name}: {r.why_not_completed}" for r in rows if r.status != "completed"]
    incomplete += [f"{r.name}: fault {f.id} ({f.kind} {f.target}) was not rolled back"
                   for r in rows for f in r.faults if f.rolled_back is False and f.duration_seconds is not None]
    if budget is None:
        incomplete.append("no budget projection (sim/result.json missing or unreadable)")
    if not rows:
        incomplete.append("no experiment results")
    deviated = [f"{r.name}: {d}" for r in rows for d in r.deviations]
    deviated += [f"{r.name}: verdict {r.verdict}" for r in rows
                 if r.verdict == "deviated" and not r.deviations]
    if lost == "yes":
        verdict = DATA_LOST
    elif data:
        verdict = INVARIANT_VIOLATED
    elif incomplete:
        verdict = INCOMPLETE
    elif deviated:
        verdict = DEVIATED
    elif at_risk:
        verdict = BUDGET_AT_RISK
    else:
        verdict = SAFE
    first = {DATA_LOST: data, INVARIANT_VIOLATED: data, BUDGET_AT_RISK: risk,
             INCOMPLETE: incomplete, DEVIATED: deviated, SAFE: []}[verdict]
    rest = [x for group in (data, incomplete, deviated, risk) if group is not first for x in group]
    return verdict, first + rest


def _overall_score(journals: list[dict[str, Any]]) -> float | None:
    """The gate's overall experiment score (chaos.scoring), so report and gate agree."""
    if not journals:
        return None
    try:
        from chaos.scoring import overall
        return _f(overall(journals).get("score"))
    except Exception:  # noqa: BLE001 — odd journals must not cost the report; fall back to a plain mean
        scores = [float(j["score"]) for j in journals if _f(j.get("score")) is not None]
        return sum(scores) / len(scores) if scores else None


def _sim_gate(sim: dict[str, Any], budget_minutes: float) -> tuple[bool | None, list[str]]:
    """The gate the simulation wrote, else the sim gate's own rule at its default threshold."""
    gate = sim.get("gate")
    if isinstance(gate, dict) and isinstance(gate.get("passed"), bool):
        return gate["passed"], [str(r) for r in gate.get("reasons") or []]
    try:
        from sim.gate import evaluate
        passed, reasons = evaluate(sim, budget_minutes=budget_minutes)
        return bool(passed), [str(r) for r in reasons]
    except Exception:  # noqa: BLE001 — a result too broken to judge is shown as "unknown"
        return None, []


def _budget(sim: dict[str, Any] | None) -> Budget | None:
    if not sim:
        return None
    dm = sim.get("downtime_minutes") or {}
    pe = sim.get("p_exceed") or {}
    budget_minutes = _f(sim.get("budget_minutes")) or DEFAULT_BUDGET_MINUTES
    gate_passed, gate_reasons = _sim_gate(sim, budget_minutes)
    return Budget(
        budget_minutes=budget_minutes,
        mean=_f(dm.get("mean")), p50=_f(dm.get("p50")), p95=_f(dm.get("p95")), p99=_f(dm.get("p99")),
        stderr=_f(dm.get("stderr")),
        p_exceed=_f(pe.get("estimate")), p_exceed_low=_f(pe.get("ci_low")),
        p_exceed_high=_f(pe.get("ci_high")), confidence=_f(pe.get("confidence")) or 0.95,
        gate_passed=gate_passed, gate_reasons=gate_reasons,
        years=sim.get("years") if isinstance(sim.get("years"), int) else None,
        engine=sim.get("engine"), parameter_interval=_pair(pe.get("parameter_interval")),
        pages_per_year=_f((sim.get("burn_rate_alerts") or {}).get("pages_per_year")),
        **_calibration(sim.get("calibration")))


def _calibration(cal: Any) -> dict[str, Any]:
    if not isinstance(cal, dict):
        return {"measured": [], "defaults": 0}
    measured = [{"parameter": k, "n": v.get("n"), "mean": _f(v.get("mean_measured")), "fit": v.get("fit")}
                for k, v in sorted(cal.items()) if isinstance(v, dict) and v.get("source") == "measured"]
    defaults = sum(1 for v in cal.values() if isinstance(v, dict) and v.get("source") == "default")
    return {"measured": measured, "defaults": defaults}


def _pair(v: Any) -> tuple[float, float] | None:
    if isinstance(v, (list, tuple)) and len(v) == 2 and all(_f(x) is not None for x in v):
        return float(v[0]), float(v[1])
    return None


def _experiment_row(exp: ExperimentView) -> ExperimentRow:
    j = exp.journal or {}
    measurements = [m for m in j.get("measurements") or [] if isinstance(m, dict)]
    by_fault = {str(m.get("fault_id")): m for m in measurements}
    faults = []
    for f in j.get("faults") or []:
        if not isinstance(f, dict):
            continue
        m = by_fault.get(str(f.get("id")), {})
        start, end = _f(f.get("start")), _f(f.get("end"))
        faults.append(FaultRow(
            id=str(f.get("id", "")), kind=str(f.get("kind", "?")), target=_target(f),
            failure_mode=str(f.get("failure_mode") or m.get("failure_mode") or ""),
            duration_seconds=(end - start) if start is not None and end is not None else None,
            detection_seconds=_f(m.get("detection_seconds")),
            failover_seconds=_f(m.get("failover_seconds")),
            recovery_seconds=_f(m.get("recovery_seconds")),
            downtime_seconds=_f(m.get("downtime_seconds")), measured=bool(m),
            rolled_back=f.get("rolled_back") if isinstance(f.get("rolled_back"), bool) else None))
    measured = [f for f in faults if f.measured]
    det = [f.detection_seconds for f in measured if f.detection_seconds is not None]
    rec = [f.recovery_seconds for f in measured if f.recovery_seconds is not None]
    downtime = _f(j.get("downtime_seconds"))
    if downtime is None:
        dts = [f.downtime_seconds for f in measured if f.downtime_seconds is not None]
        downtime = sum(dts) if dts else None
    data_lost, problems = _invariants(j.get("invariants"), exp.journal is not None)
    during = (j.get("slis") or {}).get("during") or {}
    return ExperimentRow(
        name=exp.name, title=exp.title, status=exp.status, verdict=exp.verdict,
        score=_f(j.get("score")), faults=faults,
        detection_seconds=max(det) if det else None,
        detection_never=any(f.detection_seconds is None for f in measured),
        recovery_seconds=max(rec) if rec else None,
        recovery_never=any(f.recovery_seconds is None for f in measured),
        downtime_seconds=downtime, availability_during=_f(during.get("availability")),
        data_lost=data_lost, data_problems=problems,
        deviations=([str(x) for x in j.get("reasons") or []] if exp.verdict == "deviated" and j.get("reasons")
                    else _deviations(j.get("hypothesis"))),
        errors=[_text(e) for e in j.get("errors") or []] or ([exp.step_error] if exp.step_error else []),
        note="" if exp.journal is not None else _no_journal_note(exp),
        judgement=_judgement_line(j.get("judgement")))


def _judgement_line(judgement: Any) -> str:
    """"Control (interleaved): score 50; latency_ms High (harmful), p 0.002, effect 1, n 6/6; ..."."""
    if not isinstance(judgement, dict):
        return ""
    parts = []
    for m in judgement.get("metrics") or []:
        if isinstance(m, dict):
            p, effect = _f(m.get("p_value")), _f(m.get("rank_biserial"))
            parts.append(f"{m.get('metric')} {m.get('classification')}{' (harmful)' if m.get('harmful') else ''}"
                         + ("" if p is None else ", p < 1e-6" if p == 0 else f", p {p:.3g}") + (f", effect {effect:.2g}" if effect is not None else "")
                         + f", n {m.get('n_control')}/{m.get('n_experiment')}")
    score = _f(judgement.get("score"))
    line = f"Control ({judgement.get('mode', 'windows')}): score {'—' if score is None else f'{score:g}'}; " + "; ".join(parts)
    return line + (" — few samples: the test has little power" if judgement.get("few_samples") else "")


def _no_journal_note(exp: ExperimentView) -> str:
    for m in exp.missing:
        if m.what.endswith("journal.json"):
            return f"journal.json {m.why}"
        if m.what.endswith("/"):
            return m.why
    return "no journal"


def _target(fault: dict[str, Any]) -> str:
    """The fault's target, with the resolved instances when a selector named several."""
    target = str(fault.get("target") or "")
    resolved = [str(t) for t in fault.get("targets") or [] if str(t) != target]
    if resolved:
        return f"{target} ({', '.join(resolved)})" if target else ", ".join(resolved)
    return target


def _invariants(invariants: Any, have_journal: bool) -> tuple[str, list[str]]:
    """("yes"/"no"/"unknown" acknowledged data lost, one line per violated invariant)."""
    if not have_journal or not isinstance(invariants, list) or not invariants:
        return "unknown", []
    lost = False
    unchecked = False
    problems = []
    for inv in invariants:
        if not isinstance(inv, dict):
            continue
        if inv.get("ok") is None:       # skipped: could not be checked, which is not a pass
            unchecked = True
            continue
        counts = inv.get("counts") or {}
        bad = {k: v for k, v in counts.items() if isinstance(v, (int, float)) and v > 0}
        if inv.get("ok") is False or bad:
            # a failed loss invariant without counts still means data went missing
            lost = lost or bool(bad.get("lost")) or (not bad and "loss" in str(inv.get("name", "")))
            what = ", ".join(f"{v:g} {k}" for k, v in bad.items()) or "violated"
            examples = [str(_example_id(e)) for e in (inv.get("examples") or [])[:3]]
            eg = f" (e.g. {', '.join(examples)})" if examples else ""
            problems.append(f"{inv.get('name', 'invariant')}: {what}{eg}")
    return ("yes" if lost else "unknown" if unchecked and not problems else "no"), problems


def _example_id(example: Any) -> Any:
    if isinstance(example, dict):
        for key in ("id", "ids", "key"):
            if example.get(key) is not None:
                v = example[key]
                return "/".join(map(str, v)) if isinstance(v, list) else v
        return example.get("anomaly", "?")
    return example


def _deviations(hypothesis: Any) -> list[str]:
    if not isinstance(hypothesis, dict):
        return []
    out = []
    phases: list[tuple[str, Any]] = [("before", hypothesis.get("before")), ("after", hypothesis.get("after"))]
    during = hypothesis.get("during")
    if isinstance(during, list):
        phases[1:1] = [("during", d) for d in during]
    elif isinstance(during, dict):
        phases.insert(1, ("during", during))
    for phase, h in phases:
        if not isinstance(h, dict) or h.get("met", True):
            continue
        failed = [p for p in h.get("probes") or [] if isinstance(p, dict) and not p.get("met", p.get("ok", True))]
        if failed:
            for p in failed:
                detail = p.get("error") or p.get("detail") or _probe_values(p)
                at = f" at t={h['t']:g} s" if isinstance(h.get("t"), (int, float)) else ""
                out.append(f"steady state not met {phase}{at}: {p.get('name', 'probe')}"
                           f"{' — ' + str(detail) if detail else ''}")
        else:
            out.append(f"steady state not met {phase}")
    return out


def _probe_values(p: dict[str, Any]) -> str:
    if "value" in p and "tolerance" in p:
        return f"{p['value']!r}, wanted {p['tolerance']}"
    if "value" in p:
        return f"value {p['value']}"
    return ""


def _text(e: Any) -> str:
    if isinstance(e, dict):
        return str(e.get("message") or e.get("error") or e)
    return str(e)


def _f(v: Any) -> float | None:
    """A finite number, or None (for null, text, booleans, NaN and infinities alike)."""
    ok = isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
    return float(v) if ok else None
