"""The yearly downtime distribution from the simulation, with the budget line and P(D > budget)."""
from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from reports.plots.common import ACCENT, BAD, NEUTRAL, new_figure


def render(edges: list[float], counts: list[float], *, budget: float, p_exceed: float | None,
           ci: tuple[float | None, float | None], mean: float | None, p99: float | None) -> Figure:
    e = np.asarray(edges, dtype=float)
    c = np.asarray(counts, dtype=float)
    share = 100.0 * c / c.sum() if c.sum() else c
    fig, (ax,) = new_figure()
    widths = np.diff(e)
    colors = [BAD if lo >= budget else ACCENT for lo in e[:-1]]
    ax.bar(e[:-1], share, width=widths, align="edge", color=colors, alpha=0.8, linewidth=0)
    ax.axvline(budget, color=BAD, lw=2, label=f"budget {budget:g} min/yr")
    if mean is not None:
        ax.axvline(mean, color=NEUTRAL, lw=1.2, ls="--", label=f"mean {mean:.1f} min")
    if p99 is not None:
        ax.axvline(p99, color=NEUTRAL, lw=1, ls=":", label=f"p99 {p99:.1f} min")
    if p_exceed is not None:
        lo, hi = ci
        band = f" (95% CI {100 * lo:.2f}–{100 * hi:.2f}%)" if lo is not None and hi is not None else ""
        ax.text(0.98, 0.95, f"P(D > budget) = {100 * p_exceed:.2f}%{band}", transform=ax.transAxes,
                ha="right", va="top", fontsize=10, fontweight="bold", color=BAD,
                bbox={"facecolor": "white", "edgecolor": BAD, "alpha": 0.9})
    ax.set_xlim(e[0], _xmax(e, c, budget))
    ax.set_title("Yearly downtime distribution (simulated years)")
    ax.set_xlabel("downtime per year (minutes)")
    ax.set_ylabel("share of simulated years (%)")
    ax.legend(loc="center right")
    return fig


def _xmax(e: np.ndarray, c: np.ndarray, budget: float) -> float:
    """Cut the long tail at the 99.9th percentile but always show the budget."""
    if not c.sum():
        return max(float(e[-1]), budget * 1.2)
    cum = np.cumsum(c) / c.sum()
    idx = int(np.searchsorted(cum, 0.999)) + 1
    return max(float(e[min(idx, len(e) - 1)]), budget * 1.2)
