"""A tornado of sensitivities: how far mean yearly downtime moves as each parameter swings."""
from __future__ import annotations

from matplotlib.figure import Figure

from reports.plots.common import BAD, GOOD, NEUTRAL, new_figure


def render(sensitivities: list[dict], *, baseline: float | None, budget: float) -> Figure:
    rows = sorted(sensitivities, key=lambda s: abs(float(s["high"]) - float(s["low"])))
    fig, (ax,) = new_figure(height=max(2.4, 0.4 * len(rows) + 1.2))
    for i, s in enumerate(rows):
        lo, hi = float(s["low"]), float(s["high"])
        base = baseline if baseline is not None else (lo + hi) / 2
        ax.barh(i, lo - base, left=base, color=GOOD if lo < base else BAD, alpha=0.85)
        ax.barh(i, hi - base, left=base, color=BAD if hi > base else GOOD, alpha=0.85)
        ax.text(max(lo, hi, base), i, f" swing {abs(hi - lo):.1f} min", va="center", fontsize=8)
    ax.set_yticks(range(len(rows)), [str(s["parameter"]) for s in rows])
    if baseline is not None:
        ax.axvline(baseline, color=NEUTRAL, lw=1, label=f"baseline mean {baseline:.1f} min")
    ax.axvline(budget, color=BAD, lw=1.5, ls="--", label=f"budget {budget:g} min")
    lo_all = min([float(s["low"]) for s in rows] + [baseline or 0.0])
    hi_all = max([float(s["high"]) for s in rows] + [budget, baseline or 0.0])
    ax.set_xlim(max(0.0, lo_all - 0.1 * (hi_all - lo_all)), hi_all + 0.25 * (hi_all - lo_all))
    ax.set_title("Sensitivity of mean yearly downtime (parameter low vs high)")
    ax.set_xlabel("mean downtime per year (minutes)")
    ax.set_ylabel("parameter")
    ax.legend(loc="lower right")
    return fig
