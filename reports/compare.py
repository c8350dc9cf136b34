"""What got better or worse since a previous run.

:func:`find_previous` picks the previous run: the newest sibling run directory under the
same parent that started before this one. :func:`compare` is pure: it lines up the key
figures of two summaries (P(D > budget), mean yearly downtime, and per experiment the
worst detection and recovery time and the downtime) and says for each whether it got
better or worse. Lower is better for every one of them.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

from reports.loader import is_run_dir, run_started_at
from reports.summary import Summary

# Changes smaller than this (relative, or absolute in the figure's unit) count as "same".
REL_TOLERANCE = 0.02
ABS_TOLERANCE = 1e-6


@dataclasses.dataclass
class Change:
    key: str
    label: str
    unit: str
    previous: float | None
    current: float | None
    direction: str               # better | worse | same | new | gone

    @property
    def delta(self) -> float | None:
        if self.previous is None or self.current is None:
            return None
        return self.current - self.previous

    @property
    def relative(self) -> float | None:
        if self.delta is None or not self.previous:
            return None
        return self.delta / abs(self.previous)


@dataclasses.dataclass
class Comparison:
    previous_run: str
    changes: list[Change]

    @property
    def better(self) -> list[Change]:
        return [c for c in self.changes if c.direction == "better"]

    @property
    def worse(self) -> list[Change]:
        return [c for c in self.changes if c.direction == "worse"]


def find_previous(run_dir: Path) -> Path | None:
    here = run_dir.resolve()
    mine = run_started_at(here)
    candidates = []
    for sib in here.parent.iterdir():
        if sib == here or not is_run_dir(sib):
            continue
        t = run_started_at(sib)
        if t < mine or (t == mine and sib.name < here.name):
            candidates.append((t, sib.name, sib))
    return max(candidates)[2] if candidates else None


def key_figures(summary: Summary) -> dict[str, tuple[str, str, float | None]]:
    """key -> (label, unit, value)."""
    out: dict[str, tuple[str, str, float | None]] = {}
    b = summary.budget
    if b is not None:
        out["sim.p_exceed"] = ("P(D > budget)", "%", None if b.p_exceed is None else 100 * b.p_exceed)
        out["sim.mean_downtime"] = ("mean yearly downtime", "min", b.mean)
    for r in summary.experiments:
        out[f"{r.name}.detection"] = (f"{r.name} detection", "s", r.detection_seconds)
        out[f"{r.name}.recovery"] = (f"{r.name} recovery", "s", r.recovery_seconds)
        out[f"{r.name}.downtime"] = (f"{r.name} downtime", "s", r.downtime_seconds)
    return out


def compare(current: Summary, previous: Summary, previous_run: str) -> Comparison:
    cur, prev = key_figures(current), key_figures(previous)
    changes = []
    for key in list(cur) + [k for k in prev if k not in cur]:
        label, unit, now = cur.get(key) or prev[key]
        now = cur[key][2] if key in cur else None
        before = prev[key][2] if key in prev else None
        if before is None and now is None:
            continue
        changes.append(Change(key, label, unit, before, now, _direction(before, now)))
    return Comparison(previous_run, changes)


def _direction(before: float | None, now: float | None) -> str:
    if before is None:
        return "new"
    if now is None:
        return "gone"
    delta = now - before
    if abs(delta) <= max(ABS_TOLERANCE, REL_TOLERANCE * abs(before)):
        return "same"
    return "better" if delta < 0 else "worse"
