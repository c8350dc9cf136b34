"""Load throughput of an experiment: requests per second by outcome, fault windows shaded."""
from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from reports.plots.common import BAD, FAULT_SHADE, GOOD, NEUTRAL, WARN, new_figure
from reports.series import Marks, Throughput

COLORS = {"ok": GOOD, "error": BAD, "dropped": WARN, "other": NEUTRAL}


def render(title: str, tp: Throughput, marks: Marks) -> Figure:
    fig, (ax,) = new_figure(height=2.6)
    names = [k for k in COLORS if k in tp.by_outcome]
    ax.stackplot(tp.t, *[np.asarray(tp.by_outcome[k], dtype=float) for k in names],
                 labels=names, colors=[COLORS[k] for k in names], alpha=0.85, step="post")
    # over the bars, translucent and hatched, so the window shows where traffic is dense
    for i, (start, end, _label) in enumerate(marks.faults):
        ax.axvspan(start, max(end, start + 0.5), facecolor=FAULT_SHADE, edgecolor=BAD, alpha=0.35,
                   hatch="//", lw=0, zorder=3, label=("fault window" if i == 0 else None))
    ax.set_title(f"{title}: load throughput")
    ax.set_xlabel(f"time since experiment start (s) — from {tp.source}")
    ax.set_ylabel("requests per second (req/s)")
    ax.legend(loc="lower left", ncol=4)
    return fig
