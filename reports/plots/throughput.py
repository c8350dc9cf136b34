"""Load throughput of an experiment: requests per second by outcome, fault windows shaded."""
from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from reports.plots.common import BAD, FAULT_SHADE, GOOD, WARN, new_figure
from reports.series import Marks, Throughput

COLORS = {"ok": GOOD, "error": BAD, "dropped": WARN}


def render(title: str, tp: Throughput, marks: Marks) -> Figure:
    fig, (ax,) = new_figure(height=2.6)
    for i, (start, end, _label) in enumerate(marks.faults):
        ax.axvspan(start, max(end, start + 0.5), color=FAULT_SHADE, alpha=0.7,
                   label=("fault window" if i == 0 else None))
    names = [k for k in ("ok", "error", "dropped") if k in tp.by_outcome]
    ax.stackplot(tp.t, *[np.asarray(tp.by_outcome[k], dtype=float) for k in names],
                 labels=names, colors=[COLORS[k] for k in names], alpha=0.85, step="post")
    ax.set_title(f"{title}: load throughput")
    ax.set_xlabel(f"time since experiment start (s) — from {tp.source}")
    ax.set_ylabel("requests per second (req/s)")
    ax.legend(loc="lower left", ncol=4)
    return fig
