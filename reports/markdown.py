"""The Markdown summary: the first screen of the report, fit for a CI job summary.

GitHub's job summary renders GitHub-flavoured Markdown; tables and emoji-free status words
keep it readable in a plain terminal too. Pure: :func:`render` returns the text.
"""
from __future__ import annotations

from reports import fmt
from reports.compare import Comparison
from reports.summary import Summary

ICON = {"good": "✅", "warn": "⚠️", "bad": "❌"}


def render(summary: Summary, comparison: Comparison | None = None) -> str:
    s = summary
    lines = [f"## nineslab run `{s.run_name}`: {ICON[s.verdict_class]} {s.verdict}", ""]
    b = s.budget
    if b is not None:
        ci = fmt.interval(b.p_exceed_low, b.p_exceed_high)
        lines += [
            f"**Budget score {fmt.score(b.score)}** / 100 — P(yearly downtime > {b.budget_minutes:g} min) = "
            f"**{fmt.percent(b.p_exceed)}**" + (f" ({b.confidence:.0%} CI {ci})" if ci else "")
            + (f"; with calibration uncertainty up to {fmt.percent(b.parameter_interval[1])}"
               if b.parameter_interval else ""),
            "",
            f"Projected downtime per year: mean **{fmt.minutes(b.mean)} min**, p50 {fmt.minutes(b.p50)}, "
            f"p95 {fmt.minutes(b.p95)}, p99 {fmt.minutes(b.p99)} min "
            f"(budget {b.budget_minutes:g} min; {b.years or '?'} simulated years, {b.engine or '?'} engine). "
            f"Sim gate: **{'passed' if b.gate_passed else 'failed' if b.gate_passed is False else 'unknown'}**.",
        ]
    else:
        lines += ["**No budget projection**: sim/result.json is missing or unreadable."]
    lines += ["", f"Data lost: **{s.data_lost}**"
              + (f" · experiment score {fmt.score(s.experiment_score)} / 100" if s.experiment_score is not None else ""),
              ""]
    if s.reasons and s.verdict_class != "good":
        lines += ["Why:", ""] + [f"- {r}" for r in s.reasons[:15]] + [""]
    if s.experiments:
        lines += ["| experiment | status | verdict | what broke | fault s | detection s | recovery s | downtime s | data lost |",
                  "|---|---|---|---|---:|---:|---:|---:|---|"]
        for r in s.experiments:
            lines.append(
                f"| {r.name} | {r.status} | {r.verdict} | {_cell(r.broke)} | {fmt.seconds(r.fault_seconds)} "
                f"| {fmt.seconds(r.detection_seconds, r.detection_never)} "
                f"| {fmt.seconds(r.recovery_seconds, r.recovery_never)} | {fmt.seconds(r.downtime_seconds)} "
                f"| {r.data_lost} |")
        lines.append("")
    problems = [(r.name, p) for r in s.experiments for p in r.data_problems + r.errors]
    if problems:
        lines += ["Problems:", ""] + [f"- **{n}**: {_cell(p)}" for n, p in problems] + [""]
    if comparison is not None:
        lines += _comparison(comparison)
    if s.missing:
        lines += ["<details><summary>Missing from this run ({})</summary>".format(len(s.missing)), ""]
        lines += [f"- `{what}`: {why}" for what, why in s.missing] + ["", "</details>", ""]
    lines += ["Full report with plots: `report/report.html` in the run directory "
              "(self-contained; also results.json and junit.xml).", ""]
    return "\n".join(lines)


def _comparison(c: Comparison) -> list[str]:
    moved = c.better + c.worse
    if not moved:
        return [f"No key figure moved by more than 2% since `{c.previous_run}`.", ""]
    out = [f"Since `{c.previous_run}`: {len(c.better)} better, {len(c.worse)} worse.", "",
           "| figure | previous | now | change |", "|---|---:|---:|---|"]
    for ch in moved:
        rel = f" ({100 * ch.relative:+.0f}%)" if ch.relative is not None else ""
        out.append(f"| {ch.label} | {ch.previous:.3g} {ch.unit} | {ch.current:.3g} {ch.unit} | {ch.direction}{rel} |")
    return out + [""]


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")
