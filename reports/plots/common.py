"""Shared plotting setup: the Agg backend, one look, and figure -> PNG bytes.

The backend is chosen before pyplot is imported so that a report builds on a headless CI
machine; DPI is modest because the report must build in a few seconds.
"""
from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg", force=True)

import matplotlib.pyplot as plt  # noqa: E402  (after the backend is set)
from matplotlib.figure import Figure  # noqa: E402

DPI = 90
GOOD, BAD, WARN, NEUTRAL, ACCENT = "#2e7d32", "#c62828", "#ef6c00", "#607d8b", "#1565c0"
FAULT_SHADE = "#ffcdd2"

plt.rcParams.update({
    "figure.facecolor": "white", "axes.facecolor": "white", "axes.grid": True,
    "grid.alpha": 0.3, "axes.spines.top": False, "axes.spines.right": False,
    "font.size": 9, "axes.titlesize": 10, "axes.titleweight": "bold", "legend.fontsize": 8,
})


def new_figure(width: float = 7.0, height: float = 3.4, nrows: int = 1, sharex: bool = False):
    """A figure with ``nrows`` axes (always a list), sized in inches."""
    fig, axes = plt.subplots(nrows, 1, figsize=(width, height), sharex=sharex, squeeze=False)
    return fig, [row[0] for row in axes]


def to_png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def minutes(x: float) -> str:
    return f"{x:.3g} min" if x < 100 else f"{x:,.0f} min"
