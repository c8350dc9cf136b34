"""Multiwindow burn-rate alerts (SRE Workbook ch. 5, Table 5-8) replayed on the simulated SLI.

An incident is a run of time with failing requests, given as consecutive phases of
constant failing fraction.  A page fires when, for one of the rules, the error budget
burns at least ``burn`` times too fast over both the long and the short window:
``bad(long) >= burn * (1 - SLO) * long`` and likewise for the short window.  With the
budget of a 99.99 % SLO a full outage pages after 0.0001 x 3600 s x 14.4 = 5.2 s.

Incidents are replayed from a quiet history (no failing requests in the hour before),
and the long-window condition is searched within the first long window of the incident;
the short window is then checked at that instant.  This is exact for the two-phase
incidents the engines produce when their failing fraction does not rise after the
first phase; it is documented in ``docs/simulation.md``.

The replay is a statistic of the alert rules, not of the downtime: it runs on the first
``BURN_SAMPLE_YEARS`` years of a *run* (:func:`replayed_years` tells each chunk its share),
so its cost does not grow with the number of years, and the replayed years are exactly
the first ones of the run's downtime array.
"""
from __future__ import annotations

import dataclasses

import numpy as np


@dataclasses.dataclass(frozen=True)
class Rule:
    long_hours: float
    short_hours: float
    burn: float


PAGE_RULES = (Rule(1.0, 5 / 60, 14.4), Rule(6.0, 0.5, 6.0))
BURN_SAMPLE_YEARS = 2_000   # ~70,000 incidents on the reference model: pages/yr to ~0.5 %


def replayed_years(sample_years: int, first_year: int, years: int) -> int:
    """How many leading years of the chunk ``[first_year, first_year + years)`` of a run
    fall in the run's first ``sample_years`` years, which are replayed through the alerts."""
    return max(0, min(years, sample_years - first_year))


def _cumulative_at(x: np.ndarray, starts: np.ndarray, durations: np.ndarray,
                   fractions: np.ndarray) -> np.ndarray:
    """Integral of the failing fraction from the incident start to x (per incident)."""
    inside = np.clip(x[:, None] - starts, 0.0, durations)
    return (inside * fractions).sum(axis=1)


def time_to_page(durations: np.ndarray, fractions: np.ndarray, *, slo: float,
                 rules: tuple[Rule, ...] = PAGE_RULES) -> np.ndarray:
    """Hours from incident start to the first page, NaN where no rule fires.

    ``durations`` and ``fractions`` are (incidents, phases) arrays; pad with zeros.
    """
    durations = np.asarray(durations, dtype=float)
    fractions = np.asarray(fractions, dtype=float)
    if durations.ndim == 1:
        durations, fractions = durations[:, None], fractions[:, None]
    eps = 1.0 - slo
    # bad over any window is at most the incident's whole area: smaller ones never page
    can = (durations * fractions).sum(axis=1) >= min(r.burn * eps * r.long_hours for r in rules)
    if not can.all():
        out = np.full(len(durations), np.nan)
        if can.any():
            out[can] = time_to_page(durations[can], fractions[can], slo=slo, rules=rules)
        return out
    starts = np.concatenate([np.zeros((len(durations), 1)), np.cumsum(durations, axis=1)[:, :-1]], axis=1)
    area = durations * fractions
    cum_end = np.cumsum(area, axis=1)
    cum_start = cum_end - area
    best = np.full(len(durations), np.inf)
    for rule in rules:
        theta_long = rule.burn * eps * rule.long_hours
        theta_short = rule.burn * eps * rule.short_hours
        crossing = (cum_start < theta_long) & (cum_end >= theta_long) & (fractions > 0)
        first = np.argmax(crossing, axis=1)
        has = crossing.any(axis=1)
        rows = np.arange(len(durations))
        f = np.where(has, fractions[rows, first], 1.0)
        t = starts[rows, first] + (theta_long - cum_start[rows, first]) / f
        has &= t <= rule.long_hours
        short = _cumulative_at(t, starts, durations, fractions) - _cumulative_at(
            np.maximum(t - rule.short_hours, 0.0), starts, durations, fractions)
        has &= short >= theta_short * (1 - 1e-9)
        best = np.where(has, np.minimum(best, t), best)
    return np.where(np.isfinite(best), best, np.nan)
