"""Per experiment: success rate and p50/p99 latency over time, fault windows shaded,
detection and recovery marked."""
from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, NullFormatter

from reports.plots.common import ACCENT, BAD, FAULT_SHADE, GOOD, WARN, new_figure
from reports.series import Marks, SliSeries


def render(title: str, series: SliSeries, marks: Marks, *, failed_at: float | None = None) -> Figure:
    fig, (top, bottom) = new_figure(height=4.6, nrows=2, sharex=True)
    for ax in (top, bottom):
        labelled = ax is top   # one legend entry per mark, in the upper panel
        for i, (start, end, _label) in enumerate(marks.faults):
            ax.axvspan(start, max(end, start + 0.5), color=FAULT_SHADE, alpha=0.7,
                       label=("fault window" if i == 0 and labelled else None))
        for i, t in enumerate(marks.detections):
            ax.axvline(t, color=WARN, ls="--", lw=1.4, label=("detected" if i == 0 and labelled else None))
        for i, t in enumerate(marks.recoveries):
            ax.axvline(t, color=GOOD, ls="-.", lw=1.4, label=("recovered" if i == 0 and labelled else None))
        if failed_at is not None:
            ax.axvline(failed_at, color=BAD, lw=2, label="experiment failed" if labelled else None)
    top.plot(series.t, series.success_pct, color=ACCENT, lw=1.5, label="success rate")
    low = np.nanmin(series.success_pct) if len(series.success_pct) else 100.0
    top.set_ylim(max(0.0, min(low, 99.0) - 2), 100.5)
    top.set_ylabel("success rate (%)")
    top.set_title(f"{title}: success rate and latency")
    top.legend(loc="lower left", ncol=4)
    bottom.plot(series.t, series.p50_ms, color=ACCENT, lw=1.2, label="p50")
    bottom.plot(series.t, series.p99_ms, color=BAD, lw=1.2, label="p99")
    lat = np.concatenate([series.p50_ms, series.p99_ms])
    positive = lat[np.isfinite(lat) & (lat > 0)]
    # log scale only when latency spans more than a decade and a half (an outage's timeouts)
    if len(positive) and positive.max() / positive.min() > 30:
        bottom.set_yscale("log")
        # plain numbers (10, 100, 1000) read better than 10^n and skip mathtext parsing
        bottom.yaxis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v:g}"))
        bottom.yaxis.set_minor_formatter(NullFormatter())
    bottom.set_ylabel("latency (ms)")
    bottom.set_xlabel(f"time since experiment start (s) — from {series.source}")
    bottom.legend(loc="upper left", ncol=2)
    return fig
