"""From what happened (fault timeline, samples, events, live probe results, invariant results)
to what it meant: SLIs per window, measurements per fault, hypothesis, judgement, verdict and
score — the computed half of a journal. Pure: no clock, no files.

Times: ``t0`` is the load's first arrival (unix seconds); windows and per-second rows use
seconds since ``t0``; fault ``start``/``end`` and events are unix seconds.
"""
from __future__ import annotations

from typing import Any

from chaos import detection, hypothesis as hyp, interleave, judge, scoring, verdict as verdict_mod
from chaos.slis import Sample, per_second, window_stats


def windows(exp: Any, timeline: list[dict], t0: float, t_end: float) -> dict[str, Any]:
    """The before/after windows and the fault windows, absolute."""
    applied = [f for f in timeline if f.get("start") is not None]
    warm = t0 + min(exp.load.warmup, max(0.0, (min((f["start"] for f in applied), default=t_end) - t0) / 2))
    if not applied:
        return {"before": (warm, t_end), "after": (warm, t_end), "faults": []}
    first = min(f["start"] for f in applied)
    # "after" starts a settle time after the *scheduled* end of the last fault: a rollback that
    # takes a while (a server restarting) overlaps the settle time instead of eating the window
    last_scheduled = max(t0 + f["at"] + f["for"] for f in applied)
    fault_windows = _merge([(f["start"], f["end"] if f.get("end") is not None else t_end) for f in applied])
    after_start = min(last_scheduled + exp.slo.settle_seconds, t_end)
    return {"before": (warm, first), "after": (after_start, t_end), "faults": fault_windows}


def _merge(spans: list[tuple[float, float]]) -> list[tuple[float, float]]:
    out: list[tuple[float, float]] = []
    for a, b in sorted(spans):
        if out and a <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], b))
        else:
            out.append((a, b))
    return out


def analyse(exp: Any, *, t0: float, t_end: float, timeline: list[dict], samples: list[Sample],
            events: list[dict], live_probes: list[dict], invariants: list[dict], status: str,
            aborted_reason: str | None = None, link_roles: dict[str, tuple[str, str]] | None = None,
            rng: Any = None, actions: list[dict] | None = None) -> dict:
    win = windows(exp, timeline, t0, t_end)
    before = window_stats(samples, *win["before"])
    after = window_stats(samples, *win["after"])
    during_samples = [s for s in samples if any(a <= s.intended_ts < b for a, b in win["faults"])]
    from chaos.slis import stats
    during = stats(during_samples)
    during.update(windows=[[a, b] for a, b in win["faults"]])
    rows = per_second(samples, t0, t_end)

    measurements = []
    baseline = before.get("availability")
    for f, fault in _applied_pairs(exp, timeline):
        matchers = ([fault.detect.model_dump(exclude_none=True)] if fault.detect else
                    detection.default_matchers(fault.kind, f["targets"], link_roles=link_roles,
                                               regions=f.get("regions")))
        m = detection.measure_fault(fault=fault, start_ts=f["start"], end_ts=f["end"] if f.get("end") else t_end,
                                    t0=t0, per_second=rows, events=events, matchers=matchers,
                                    baseline=baseline, slo=exp.slo)
        m.update(f.get("measured") or {})    # what the driver measured of its undo beats the availability view
        m["matchers"] = matchers
        measurements.append(m)
    downtime = detection.downtime_seconds(rows, exp.slo.availability)
    burned = detection.budget_minutes(downtime)

    rel = lambda w: (w[0] - t0, w[1] - t0)  # noqa: E731
    hypothesis = {
        "title": exp.hypothesis.title,
        "before": hyp.judge_window(exp.hypothesis.probes, samples, *win["before"], "before", live_probes),
        "during": hyp.judge_during(exp.hypothesis.probes, samples, win["faults"], exp.hypothesis.interval_seconds,
                                   [dict(r, t=r["t"]) for r in live_probes if r.get("phase") == "during"]),
        "after": hyp.judge_window(exp.hypothesis.probes, samples, *win["after"], "after", live_probes),
    }
    for phase in ("before", "after"):
        hypothesis[phase]["window"] = [round(x, 3) for x in rel(win[phase])]
    for check in hypothesis["during"]:
        check["t"] = round(check["t"] - t0, 3)
        for p in check["probes"]:
            if "window" in p:
                p["window"] = [round(p["window"][0] - t0, 3), round(p["window"][1] - t0, 3)]
    for phase in ("before", "after"):
        for p in hypothesis[phase]["probes"]:
            if "window" in p:
                p["window"] = [round(p["window"][0] - t0, 3), round(p["window"][1] - t0, 3)]

    judgement = control_judgement(exp, samples, timeline, win["faults"], t0, t_end, rng) \
        if exp.control.enabled and win["faults"] else None

    faults_by_id = {f.id: f for f in exp.faults}
    v, reasons = verdict_mod.decide(status=status, hypothesis=hypothesis,
                                    faults=[faults_by_id[m["fault_id"]] for m in measurements],
                                    measurements=measurements, invariants=invariants, aborted_reason=aborted_reason,
                                    actions=actions or [])
    score = scoring.budget_score(v, burned, exp.slo.budget_allowance_minutes)
    for s in (before, after):
        s["start"], s["end"] = round(s["start"] - t0, 3), round(s["end"] - t0, 3)
    during["windows"] = [[round(a - t0, 3), round(b - t0, 3)] for a, b in win["faults"]]
    return {"slis": {"before": before, "during": during, "after": after, "per_second": rows},
            "measurements": measurements, "downtime_seconds": downtime, "budget_minutes_burned": burned,
            "hypothesis": hypothesis, "judgement": judgement, "verdict": v, "reasons": reasons, "score": score}


def control_judgement(exp: Any, samples: list[Sample], timeline: list[dict], fault_windows: list[tuple[float, float]],
                      t0: float, t_end: float, rng: Any = None) -> dict:
    """The control side against the experiment side, per metric, in the experiment's control mode."""
    ctl = exp.control
    extra: dict[str, Any] = {}
    if ctl.mode == "interleaved":
        on, off = interleave.on_off_spans(timeline, ctl.window_seconds, t_end)
        metrics = {m: (interleave.per_second_values(samples, off, m, skip=ctl.skip_seconds),
                       interleave.per_second_values(samples, on, m, skip=ctl.skip_seconds))
                   for m in ctl.metrics}
        description = (f"interleaved windows of {ctl.window_seconds:g} s: per-second values of the fault-on "
                       f"windows against the fault-off windows, {ctl.skip_seconds:g} s after each toggle left out")
        extra = {"cycles": len(on), "window_seconds": ctl.window_seconds, "skip_seconds": ctl.skip_seconds,
                 "on": [[round(a - t0, 3), round(b - t0, 3)] for a, b in on],
                 "off": [[round(a - t0, 3), round(b - t0, 3)] for a, b in off]}
    elif ctl.mode == "paths":
        during = [s for s in samples if any(a <= s.intended_ts < b for a, b in fault_windows)]
        control = [s for s in during if ctl.clean.matches(s)]
        experiment = [s for s in during if ctl.faulted.matches(s)]
        metrics = {m: (judge.metric_values(control, m), judge.metric_values(experiment, m)) for m in ctl.metrics}
        description = (f"paths during the faults: {_path(ctl.faulted)} (experiment) against "
                       f"{_path(ctl.clean)} (control)")
        extra = {"clean": ctl.clean.model_dump(exclude_none=True), "faulted": ctl.faulted.model_dump(exclude_none=True)}
    else:
        control, experiment = judge.split_samples(samples, fault_windows, settle=exp.slo.settle_seconds)
        metrics = {m: (judge.metric_values(control, m), judge.metric_values(experiment, m)) for m in ctl.metrics}
        description = "windows: samples inside the fault windows against those outside them and their settle time"
    out = judge.judge(metrics, min_samples=ctl.min_samples, rng=rng)
    sides = [(r["n_control"], r["n_experiment"]) for r in out["metrics"]]
    return {"mode": ctl.mode, "description": description,
            "samples": {"control": max((c for c, _ in sides), default=0),
                        "experiment": max((e for _, e in sides), default=0)},
            "few_samples": any(r["few_samples"] for r in out["metrics"]), "min_samples": ctl.min_samples,
            **out, **extra}


def _path(f: Any) -> str:
    return " ".join(f"{k} {v}" for k, v in f.model_dump(exclude_none=True).items())


def _applied_pairs(exp: Any, timeline: list[dict]):
    by_id = {f.id: f for f in exp.faults}
    for f in timeline:
        if f.get("start") is not None and f["id"] in by_id:
            yield f, by_id[f["id"]]
