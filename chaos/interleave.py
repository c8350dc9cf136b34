"""Interleaved windows (``control.mode: interleaved``): every fault is toggled on and off in
windows of ``control.window_seconds`` for as many cycles as its ``for`` holds, and the
per-second SLIs of the on-windows are judged against those of the off-windows (chaos.judge).

``expand(exp)`` turns each fault into one fault per on-window, ids ``<id>@1``, ``<id>@2``, ...;
the first keeps the fault's ``expect`` (detection, recovery, downtime), the others are measured
and judged but expect nothing (a breaker may well stay open across a short off-window).
The engine runs the expanded experiment like any other. ``on_off_spans`` cuts the run into
the on-windows (as applied) and the off-windows between them; ``per_second_values`` turns
the samples of some spans into one value per whole second. Pure: no clock, no files.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from chaos.experiment import Experiment, FaultExpectation

SEPARATOR = "@"
SHORT_SECOND = 0.25      # a span's last second counts when at least 0.75 s of it is inside


def expand(exp: Experiment) -> Experiment:
    """The experiment with its faults toggled; any other experiment unchanged."""
    if not (exp.control.enabled and exp.control.mode == "interleaved"):
        return exp
    window = float(exp.control.window_seconds or 0)
    faults = []
    for fault in exp.faults:
        for k in range(round(fault.duration / (2 * window))):
            faults.append(fault.model_copy(update={
                "id": f"{fault.id}{SEPARATOR}{k + 1}", "at": fault.at + 2 * k * window, "duration": window,
                "expect": fault.expect if k == 0 else FaultExpectation()}))
    return exp.model_copy(update={"faults": faults})


def origin_id(fault_id: str) -> str:
    """The id the experiment file gave a toggled fault."""
    return fault_id.split(SEPARATOR, 1)[0]


def on_off_spans(timeline: list[dict], window: float, t_end: float) -> tuple[list[tuple[float, float]],
                                                                               list[tuple[float, float]]]:
    """(on, off) absolute spans: on = the applied windows merged; off = the gaps between them
    and one window after the last (cut at ``t_end``)."""
    applied = sorted((f["start"], f["end"] if f.get("end") is not None else t_end)
                     for f in timeline if f.get("start") is not None)
    on: list[tuple[float, float]] = []
    for a, b in applied:
        if on and a <= on[-1][1]:
            on[-1] = (on[-1][0], max(on[-1][1], b))
        else:
            on.append((a, b))
    off = [(b, nxt[0]) for (_, b), nxt in zip(on, on[1:])]
    if on:
        off.append((on[-1][1], min(on[-1][1] + window, t_end)))
    return on, off


def per_second_values(samples: list[Any], spans: list[tuple[float, float]], metric: str, *,
                      skip: float = 0.0) -> list[float]:
    """One value per second inside a span, from ``skip`` seconds after its start on (the last
    second of a span counts when at least 0.75 s of it is inside):
    ``availability_per_second`` = ok / all; ``latency_ms`` = median latency of the successful
    ones. A second without samples (or, for latency, without a success) gives no value."""
    if metric not in ("availability_per_second", "latency_ms"):
        raise ValueError(f"no per-second value for metric {metric!r}")
    ts = np.array([s.intended_ts for s in samples], dtype=float)
    order = np.argsort(ts, kind="stable")
    ts = ts[order]
    out = []
    for a, b in spans:
        # an applied window is a tick or two shorter than scheduled: its last second may be short
        for k in range(max(0, math.floor(b - a - skip + SHORT_SECOND))):
            lo, hi = a + skip + k, min(a + skip + k + 1, b)
            bucket = [samples[i] for i in order[np.searchsorted(ts, lo):np.searchsorted(ts, hi)]]
            if metric == "availability_per_second":
                if bucket:
                    out.append(sum(1 for s in bucket if s.ok) / len(bucket))
            else:
                lat = [s.latency_ms for s in bucket if s.ok]
                if lat:
                    out.append(float(np.median(lat)))
    return out
