"""The verdict of one experiment run, from what was measured (pure).

Order of precedence: ``error`` (the run itself failed: its numbers cannot be trusted) >
``invariant_violated`` (acknowledged data lost, duplicated, reordered or phantom) >
``deviated`` (the hypothesis did not hold, a fault cost more than its ``expect`` allows, or a
stop condition aborted the run) > ``passed``.
"""
from __future__ import annotations

from typing import Any

from chaos import hypothesis as hyp


def fault_expectation_failures(fault: Any, m: dict) -> list[str]:
    exp = fault.expect
    out = []
    det = m.get("detection_seconds")
    if exp.detected is True and det is None:
        out.append(f"{fault.id}: the system never noticed the fault (no matching mechanism event)")
    if exp.detected is False and det is not None:
        out.append(f"{fault.id}: a mechanism reacted ({det:g} s) although none should")
    if exp.detection_within is not None and det is not None and det > exp.detection_within:
        out.append(f"{fault.id}: detected after {det:g} s, allowed {exp.detection_within:g} s")
    rec = m.get("recovery_seconds")
    if exp.recovery_within is not None and (rec is None or rec > exp.recovery_within):
        got = "never" if rec is None else f"after {rec:g} s"
        out.append(f"{fault.id}: recovered {got}, allowed {exp.recovery_within:g} s")
    down = m.get("downtime_seconds") or 0
    if exp.max_downtime_seconds is not None and down > exp.max_downtime_seconds:
        out.append(f"{fault.id}: {down:g} s of downtime, allowed {exp.max_downtime_seconds:g} s")
    return out


def decide(*, status: str, hypothesis: dict, faults: list[Any], measurements: list[dict],
           invariants: list[dict], aborted_reason: str | None = None,
           actions: list[dict] | None = None) -> tuple[str, list[str]]:
    reasons: list[str] = []
    if status in ("failed", "interrupted"):
        return "error", [f"the run {status}"]
    unreadable = [i for i in invariants if i.get("ok") is None and (i.get("info") or {}).get("error")]
    if unreadable:
        return "error", [f"invariant {i['name']} could not be checked: {i['info']['error']}" for i in unreadable]
    bad_inv = [i for i in invariants if i.get("ok") is False]
    if bad_inv:
        for i in bad_inv:
            nonzero = ", ".join(f"{k} {v}" for k, v in i.get("counts", {}).items() if v)
            reasons.append(f"invariant {i['name']} violated: {nonzero}")
        return "invariant_violated", reasons
    if aborted_reason:
        reasons.append(f"aborted: {aborted_reason}")
    for phase in ("before", "after"):
        ph = hypothesis.get(phase) or {}
        for p in ph.get("probes", []):
            if not p.get("met"):
                reasons.append(f"hypothesis {phase}: {p['name']} = {p.get('value')!r}, wanted {p.get('tolerance')}"
                               + (f" ({p['error']})" if p.get("error") else ""))
    failed_during = [c for c in hypothesis.get("during", []) if not c.get("met")]
    if failed_during:
        names = sorted({p["name"] for c in failed_during for p in c["probes"] if not p["met"]})
        reasons.append(f"hypothesis during faults: {', '.join(names)} out of tolerance in "
                       f"{len(failed_during)} of {len(hypothesis.get('during', []))} checks "
                       f"(first at t={failed_during[0]['t']:g} s)")
    for a in actions or []:
        if not a.get("ok"):
            got = a.get("error") or f"HTTP {a.get('status')}: {a.get('body', '')[:120]}"
            reasons.append(f"action {a['name']} at t={a.get('t', a.get('at'))} s failed ({got})")
    by_id = {m["fault_id"]: m for m in measurements}
    for f in faults:
        if f.id in by_id:
            reasons.extend(fault_expectation_failures(f, by_id[f.id]))
    return ("deviated" if reasons else "passed"), reasons


__all__ = ["decide", "fault_expectation_failures", "hyp"]
