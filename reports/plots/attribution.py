"""Downtime attributed by failure mode: which mode eats the budget (mean minutes a year)."""
from __future__ import annotations

from matplotlib.figure import Figure

from reports.plots.common import ACCENT, BAD, new_figure


def render(attribution: dict[str, float], *, budget: float) -> Figure:
    items = sorted(((k, float(v)) for k, v in attribution.items()), key=lambda kv: kv[1])
    total = sum(v for _, v in items) or 1.0
    fig, (ax,) = new_figure(height=max(2.4, 0.35 * len(items) + 1.2))
    names = [k for k, _ in items]
    values = [v for _, v in items]
    bars = ax.barh(names, values, color=[BAD if v > budget / 4 else ACCENT for v in values])
    for bar, v in zip(bars, values):
        ax.text(bar.get_width(), bar.get_y() + bar.get_height() / 2,
                f" {v:.2f} min ({100 * v / total:.0f}%)", va="center", fontsize=8)
    ax.set_xlim(0, max(values + [0.0]) * 1.35 or 1)
    ax.set_title(f"Downtime by failure mode (total {total:.1f} of {budget:g} min/yr budget)")
    ax.set_xlabel("mean downtime per year (minutes)")
    ax.set_ylabel("failure mode")
    return fig
