"""Which plots a run gets, drawn from what the run has, with a note for each one it cannot draw.

:func:`draw_all` calls each plot module with data from the view and summary and returns
PNG bytes per plot. A plot whose inputs are missing is skipped with the reason; a plot that
fails on odd data is skipped with the error, so a bad number never costs the whole report.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Callable

from reports.compare import Comparison
from reports.loader import ExperimentView, RunView
from reports.summary import Summary

TORNADO_ROWS = 12


@dataclasses.dataclass
class Plot:
    key: str               # file stem, unique in the report
    section: str           # "budget", "experiment:<name>", "comparison"
    title: str
    png: bytes
    caption: str = ""

    @property
    def filename(self) -> str:
        return f"{self.key}.png"


@dataclasses.dataclass
class PlotGap:
    section: str
    title: str
    why: str
    broken: bool = False      # the inputs were there but drawing failed (a bug or odd data)


def draw_all(view: RunView, summary: Summary, comparison: Comparison | None) -> tuple[list[Plot], list[PlotGap]]:
    from reports.plots import common  # sets the Agg backend before anything draws

    plots: list[Plot] = []
    gaps: list[PlotGap] = []

    def attempt(key: str, section: str, title: str, why_missing: str | None,
                draw: Callable[[], object], caption: str = "") -> None:
        if why_missing:
            gaps.append(PlotGap(section, title, why_missing))
            return
        try:
            plots.append(Plot(key, section, title, common.to_png(draw()), caption))
        except Exception as exc:  # noqa: BLE001 — one odd input must not cost the whole report
            common.plt.close("all")
            gaps.append(PlotGap(section, title, f"could not be drawn: {type(exc).__name__}: {exc}", broken=True))

    _budget_plots(view, summary, attempt)
    for exp in view.experiments:
        _experiment_plots(exp, attempt)
    if comparison is not None:
        from reports.plots import comparison as plot_comparison

        attempt("comparison", "comparison", "What got better or worse",
                None if any(c.relative is not None for c in comparison.changes)
                else "no key figure exists in both runs",
                lambda: plot_comparison.render(comparison.changes, comparison.previous_run))
    return plots, gaps


def _budget_plots(view: RunView, summary: Summary, attempt) -> None:
    from reports.plots import attribution, burn_down, downtime_cdf, downtime_distribution, tornado

    sim = view.sim or {}
    b = summary.budget
    no_sim = "sim/result.json is missing or unreadable, so there is no projection" if b is None else None
    hist = (sim.get("downtime_minutes") or {}).get("histogram") or {}
    edges, counts = hist.get("edges") or [], hist.get("counts") or []
    no_hist = no_sim or (None if len(edges) == len(counts) + 1 and len(counts) > 0
                         else "sim/result.json has no downtime_minutes.histogram (edges, counts)")
    attempt("downtime_distribution", "budget", "Yearly downtime distribution", no_hist,
            lambda: downtime_distribution.render(edges, counts, budget=b.budget_minutes, p_exceed=b.p_exceed,
                                                 ci=(b.p_exceed_low, b.p_exceed_high), mean=b.mean, p99=b.p99))
    attempt("downtime_cdf", "budget", "Cumulative distribution of yearly downtime", no_hist,
            lambda: downtime_cdf.render(edges, counts, budget=b.budget_minutes, p_exceed=b.p_exceed))
    monthly = sim.get("monthly") or {}
    burn = monthly.get("mean_burn") or []
    band, band_note = _burn_band(monthly, burn, edges, counts)
    attempt("burn_down", "budget", "Monthly budget burn-down",
            no_sim or (None if burn else "sim/result.json has no monthly.mean_burn"),
            lambda: burn_down.render(burn, budget=b.budget_minutes, band=band,
                                     p_exhausted=monthly.get("p_exhausted_by_month") or None),
            caption=band_note)
    attr = {k: v for k, v in (sim.get("attribution") or {}).items() if isinstance(v, (int, float))}
    attempt("attribution", "budget", "Downtime by failure mode",
            no_sim or (None if attr else "sim/result.json has no attribution"),
            lambda: attribution.render(attr, budget=b.budget_minutes))
    sens = [s for s in sim.get("sensitivities") or []
            if isinstance(s, dict) and isinstance(s.get("low"), (int, float)) and isinstance(s.get("high"), (int, float))]
    sens.sort(key=lambda s: -abs(float(s["high"]) - float(s["low"])))
    shown = sens[:TORNADO_ROWS]
    base = next((float(s["base"]) for s in sens if isinstance(s.get("base"), (int, float))), None)
    attempt("sensitivities", "budget", "Sensitivities (tornado)",
            no_sim or (None if sens else "sim/result.json has no sensitivities (run without --no-sensitivities)"),
            lambda: tornado.render(shown, baseline=base if base is not None else b.mean, budget=b.budget_minutes),
            caption=f"the {len(shown)} largest of {len(sens)} parameters" if len(sens) > len(shown) else "")


def _burn_band(monthly: dict, burn: list, edges: list, counts: list) -> tuple[tuple[list, list] | None, str]:
    """The 5th–95th percentile band of cumulative burn, and a caption saying where it came from.

    The simulation may write it (``monthly.cumulative_p05``/``cumulative_p95``); otherwise it
    is approximated from the yearly distribution, spread over the months as the mean burns.
    """
    lo, hi = monthly.get("cumulative_p05"), monthly.get("cumulative_p95")
    if isinstance(lo, list) and isinstance(hi, list) and len(lo) == len(hi) == len(burn):
        return (lo, hi), ""
    if not burn or len(edges) != len(counts) + 1 or not sum(counts):
        return None, "No band: the result has neither monthly percentiles nor a yearly histogram."
    import numpy as np

    cum = np.cumsum(np.asarray(burn, dtype=float))
    if cum[-1] <= 0:
        return None, "No band: nothing was burned."
    share = cum / cum[-1]
    q05, q95 = _histogram_quantiles(edges, counts, (0.05, 0.95))
    return ((q05 * share).tolist(), (q95 * share).tolist()), (
        "Band approximated: the 5th–95th percentile of yearly downtime, spread over the months as "
        "the mean burns (the result has no monthly percentiles).")


def _histogram_quantiles(edges: list, counts: list, qs: tuple[float, ...]) -> list[float]:
    import numpy as np

    e = np.asarray(edges, dtype=float)
    cdf = np.concatenate([[0.0], np.cumsum(np.asarray(counts, dtype=float))])
    cdf /= cdf[-1]
    return [float(np.interp(q, cdf, e)) for q in qs]


def _experiment_plots(exp: ExperimentView, attempt) -> None:
    from reports import series
    from reports.plots import throughput, timeline

    section = f"experiment:{exp.name}"
    slis = series.sli_series(exp)
    marks = series.marks(exp)
    failed_at = None
    if exp.status in ("failed", "aborted", "interrupted") and exp.journal:
        end = exp.journal.get("ended_at")
        failed_at = exp.relative(float(end)) if isinstance(end, (int, float)) else None
    attempt(f"timeline-{_slug(exp.name)}", section, f"{exp.name}: timeline",
            None if slis is not None else "neither the journal's slis.per_second nor samples.csv is there",
            lambda: timeline.render(exp.name, slis, marks, failed_at=failed_at))
    tp = series.throughput(exp)
    attempt(f"throughput-{_slug(exp.name)}", section, f"{exp.name}: load throughput",
            None if tp is not None else "neither samples.csv nor the journal's slis.per_second is there",
            lambda: throughput.render(exp.name, tp, marks))


def _slug(name: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in name)
