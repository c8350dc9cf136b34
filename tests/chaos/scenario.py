"""Samples and events of made-up experiments in virtual time, for the pure-function tests."""
from __future__ import annotations

from chaos.slis import Sample

T0 = 1_000_000.0


def samples(seconds: int, rate: int = 10, bad: dict[int, float] | None = None, latency: float = 20.0,
            slow: dict[int, float] | None = None, operation: str = "chat.send") -> list[Sample]:
    """``rate`` samples a second; ``bad[t]`` = fraction failing in second t; ``slow[t]`` = latency there."""
    bad, slow = bad or {}, slow or {}
    out = []
    for t in range(seconds):
        failing = round(rate * bad.get(t, 0.0))
        for i in range(rate):
            ts = T0 + t + i / rate
            ok = i >= failing
            out.append(Sample(intended_ts=ts, latency_ms=slow.get(t, latency) + i * 0.1,
                              outcome="ok" if ok else "error", operation=operation))
    return out


def outage(start: int, end: int, fraction: float = 1.0) -> dict[int, float]:
    return {t: fraction for t in range(start, end)}
