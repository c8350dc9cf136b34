"""Generator health: was the load generator, not the system, the bottleneck?

Each generator process samples its own CPU once a second (:class:`CpuSampler`), counts
Locust's ``cpu_warning`` events and the dispatcher's late arrivals (wake lag: an idle
worker woke up late). :func:`judge` turns the merged figures into a verdict: a run is
*invalid* when the generator saturated, because then its latencies measure the
generator. Latency caused by the system (queueing behind slow answers, drops because
every worker was held) never invalidates a run — that is what is being measured.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import Any, Callable

CPU_LIMIT_PERCENT = 90.0        # Locust's own CPU_WARNING_THRESHOLD
LATE_FRACTION_LIMIT = 0.02      # more than 2 % of arrivals started late by wake lag ...
LATE_COUNT_MIN = 5              # ... and at least this many (a short run's one hiccup is no verdict)
MEAN_WAKE_LAG_LIMIT_MS = 10.0
HOST_BUSY_PERCENT = 75.0        # whole-machine CPU ...
HOST_LOAD_PER_CORE = 1.5        # ... or run queue: says *why* a generator starved


@dataclass
class CpuSampler:
    """Samples a process's CPU use; ``cpu_times`` is injected (psutil's by default)."""

    cpu_times: Callable[[], float]
    clock: Callable[[], float] = time.monotonic
    samples: list[float] = field(default_factory=list)
    host_cpu: Callable[[], float] | None = None     # whole-machine CPU %, since the last call
    host_samples: list[float] = field(default_factory=list)
    _last: tuple[float, float] | None = None
    _first: tuple[float, float] | None = None

    @classmethod
    def for_this_process(cls) -> "CpuSampler":
        import psutil

        proc = psutil.Process()

        def cpu() -> float:
            t = proc.cpu_times()
            return t.user + t.system
        psutil.cpu_percent(None)
        return cls(cpu, host_cpu=lambda: psutil.cpu_percent(None))

    def sample(self) -> float | None:
        now, cpu = self.clock(), self.cpu_times()
        if self._first is None:
            self._first = (now, cpu)
        pct = None
        if self._last is not None and now > self._last[0]:
            pct = 100.0 * (cpu - self._last[1]) / (now - self._last[0])
            self.samples.append(round(pct, 1))
            if self.host_cpu is not None:
                self.host_samples.append(round(self.host_cpu(), 1))
        self._last = (now, cpu)
        return pct

    def summary(self) -> dict[str, Any]:
        self.sample()
        assert self._first is not None and self._last is not None
        wall = self._last[0] - self._first[0]
        cpu = self._last[1] - self._first[1]
        return {"cpu_seconds": round(cpu, 3), "wall_seconds": round(wall, 3),
                "cpu_mean_percent": round(100.0 * cpu / wall, 1) if wall > 0 else 0.0,
                "cpu_max_percent": max(self.samples, default=0.0),
                "host_cpu_mean_percent": round(sum(self.host_samples) / len(self.host_samples), 1)
                if self.host_samples else 0.0,
                "host_load_per_core": round(os.getloadavg()[0] / (os.cpu_count() or 1), 2)}


def judge(processes: list[dict[str, Any]], started: int) -> tuple[bool, list[str]]:
    """Verdict over the per-process health records of one run: ``(valid, reasons)``."""
    reasons: list[str] = []
    warnings = sum(p.get("cpu_warnings", 0) for p in processes)
    if warnings:
        reasons.append(f"Locust reported CPU above {CPU_LIMIT_PERCENT:g} % {warnings} time(s)")
    for p in processes:
        if p.get("cpu_mean_percent", 0.0) > CPU_LIMIT_PERCENT:
            reasons.append(f"generator process {p.get('worker', '?')} averaged "
                           f"{p['cpu_mean_percent']:g} % CPU (limit {CPU_LIMIT_PERCENT:g} %)")
    late = sum(p.get("late", 0) for p in processes)
    if started and late >= LATE_COUNT_MIN and late / started > LATE_FRACTION_LIMIT:
        reasons.append(f"{late} of {started} arrivals started late because the generator "
                       f"woke up late ({100.0 * late / started:.1f} % > {100 * LATE_FRACTION_LIMIT:g} %)")
    lag_sum = sum(p.get("wake_lag_sum", 0.0) for p in processes)
    lag_n = sum(p.get("wake_lag_n", 0) for p in processes)
    if lag_n and 1000.0 * lag_sum / lag_n > MEAN_WAKE_LAG_LIMIT_MS:
        reasons.append(f"mean wake lag {1000.0 * lag_sum / lag_n:.1f} ms exceeds {MEAN_WAKE_LAG_LIMIT_MS:g} ms")
    host = max((p.get("host_cpu_mean_percent", 0.0) for p in processes), default=0.0)
    load = max((p.get("host_load_per_core", 0.0) for p in processes), default=0.0)
    if reasons and (host > HOST_BUSY_PERCENT or load > HOST_LOAD_PER_CORE):
        reasons.append(f"the machine itself was busy ({host:g} % CPU on average, load {load:g} per core): "
                       f"the generator competed for cores with other processes")
    return (not reasons, reasons)
