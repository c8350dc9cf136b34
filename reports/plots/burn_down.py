"""The monthly error-budget burn-down: budget left after each month, with its band.

The band is the 5th–95th percentile of cumulative burn (``monthly.cumulative_p05`` /
``cumulative_p95``, an optional extension of contracts §4, or an approximation the caller
makes from the yearly distribution); the straight line is the even burn that would spend
the budget exactly by December.
"""
from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from reports.plots.common import ACCENT, BAD, NEUTRAL, WARN, new_figure


def render(mean_burn: list[float], *, budget: float, band: tuple[list[float], list[float]] | None,
           p_exhausted: list[float] | None) -> Figure:
    burn = np.asarray(mean_burn, dtype=float)
    months = np.arange(0, len(burn) + 1)
    left = budget - np.concatenate([[0.0], np.cumsum(burn)])
    fig, (ax,) = new_figure()
    ax.plot(months, budget - budget * months / len(burn), color=NEUTRAL, ls="--", lw=1,
            label="even burn (budget / 12 a month)")
    if band is not None:
        lo, hi = (np.concatenate([[0.0], np.asarray(b, dtype=float)]) for b in band)
        ax.fill_between(months, budget - hi, budget - lo, color=ACCENT, alpha=0.2,
                        label="5th–95th percentile of years")
    ax.plot(months, left, color=ACCENT, lw=2, marker="o", ms=3, label="mean budget left")
    ax.axhline(0, color=BAD, lw=1.5)
    ax.set_xticks(months)
    ax.set_xlim(0, len(burn))
    ax.set_title("Monthly error-budget burn-down")
    ax.set_xlabel("month of the year")
    ax.set_ylabel("budget left (minutes)")
    if p_exhausted:
        ax2 = ax.twinx()
        ax2.plot(months[1:], 100 * np.asarray(p_exhausted, dtype=float), color=WARN, lw=1.2,
                 marker="s", ms=3, label="P(budget exhausted by month)")
        ax2.set_ylabel("P(budget exhausted) (%)", color=WARN)
        ax2.set_ylim(0, 100)
        ax2.grid(False)
        ax2.spines["right"].set_visible(True)
        h1, l1 = ax.get_legend_handles_labels()
        h2, l2 = ax2.get_legend_handles_labels()
        ax.legend(h1 + h2, l1 + l2, loc="lower left")
    else:
        ax.legend(loc="lower left")
    return fig
