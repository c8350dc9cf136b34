"""What got better or worse since the previous run: relative change of each key figure."""
from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from reports.compare import Change
from reports.plots.common import BAD, GOOD, NEUTRAL, new_figure

CLIP = 2.0   # show changes beyond ±200 % at the edge


def render(changes: list[Change], previous_run: str) -> Figure:
    rows = [c for c in changes if c.relative is not None][::-1]
    fig, (ax,) = new_figure(height=max(2.4, 0.32 * len(rows) + 1.2))
    rel = np.clip([100 * c.relative for c in rows], -100 * CLIP, 100 * CLIP)
    colors = [GOOD if c.direction == "better" else BAD if c.direction == "worse" else NEUTRAL for c in rows]
    ax.barh(range(len(rows)), rel, color=colors)
    for i, c in enumerate(rows):
        ax.text(rel[i], i, f" {c.previous:.3g} → {c.current:.3g} {c.unit} ", va="center", fontsize=7,
                ha="left" if rel[i] >= 0 else "right")
    ax.set_yticks(range(len(rows)), [c.label for c in rows])
    ax.axvline(0, color=NEUTRAL, lw=1)
    span = max(50.0, float(np.max(np.abs(rel))) if len(rel) else 50.0)
    ax.set_xlim(-span * 1.8, span * 1.8)
    ax.set_title(f"Change since {previous_run} (green better, red worse)")
    ax.set_xlabel("change relative to the previous run (%)")
    ax.set_ylabel("key figure")
    return fig
