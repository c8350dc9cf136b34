"""The cumulative distribution of yearly downtime: how likely a year stays within x minutes."""
from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from reports.plots.common import ACCENT, BAD, new_figure
from reports.plots.downtime_distribution import _xmax


def render(edges: list[float], counts: list[float], *, budget: float, p_exceed: float | None) -> Figure:
    e = np.asarray(edges, dtype=float)
    c = np.asarray(counts, dtype=float)
    cdf = np.concatenate([[0.0], np.cumsum(c) / c.sum()]) if c.sum() else np.zeros(len(e))
    fig, (ax,) = new_figure()
    ax.plot(e, 100 * cdf, color=ACCENT, lw=2, label="P(D ≤ x)")
    ax.axvline(budget, color=BAD, lw=2, label=f"budget {budget:g} min/yr")
    if p_exceed is not None:
        within = 100 * (1 - p_exceed)
        ax.axhline(within, color=BAD, lw=1, ls="--")
        ax.annotate(f"{within:.2f}% of years within budget", (budget, within), xytext=(8, -14),
                    textcoords="offset points", color=BAD, fontweight="bold")
    ax.set_xlim(e[0], _xmax(e, c, budget))
    ax.set_ylim(0, 101)
    ax.set_title("Cumulative distribution of yearly downtime")
    ax.set_xlabel("downtime per year (minutes)")
    ax.set_ylabel("years with downtime ≤ x (%)")
    ax.legend(loc="lower right")
    return fig
