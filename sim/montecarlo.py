"""Monte Carlo driver: chunks of years on independent seeded streams, in parallel, to a precision.

Chunk ``j`` of a run with seed ``s`` always draws from ``SeedSequence(s, spawn_key=(j, ...))``
(see :mod:`sim.streams`), and chunks are combined in index order, so a result depends on
the seed, the model and the number of years - not on the number of worker processes.
With ``precision`` the run stops at the first checkpoint (every ``CHECK_EVERY`` chunks) where
the 95 % interval of P(D > budget) is narrower than +-precision; ``years`` is then the cap.
"""
from __future__ import annotations

import concurrent.futures as cf
import dataclasses
import itertools
import math
import multiprocessing
import os
import time
from typing import Callable

import numpy as np

from sim.episodes import ChunkTotals
from sim.heap import keep_freed_memory, reuse_freed_memory
from sim.model import model_from_dict
from sim.topology import Topology

CHUNK_YEARS = {"fast": 20_000, "simpy": 2_000, "simpy-full": 250}
CHECK_EVERY = 4
Z95 = 1.959963984540054


def wilson(successes: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval of a binomial proportion."""
    if n == 0:
        return 0.0, 1.0
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


# The fast engine's compiled kernels (sim/kernels.py) cost ~1 s of CPU to load in a process
# (10-25 s the first time, when Numba compiles them) and save ~4 us a simulated year: runs
# shorter than this keep the NumPy path, which gives the same numbers.
COMPILED_MIN_YEARS = 250_000


def make_engine(name: str, topo: Topology, seed: int, *, alerts: bool = True, compiled: bool = False):
    """An engine by name; ``alerts=False`` skips the burn-rate replay (sensitivity runs);
    ``compiled`` runs the fast engine's Numba kernels when they load."""
    burn = {} if alerts else {"burn_sample_years": 0}
    if name == "fast":
        from sim.engine_fast import FastEngine
        return FastEngine(topo, seed, compiled=compiled, **burn)
    from sim.engine_simpy import SimpyEngine
    return SimpyEngine(topo, seed, full=(name == "simpy-full"), **burn)


@dataclasses.dataclass
class MonteCarloRun:
    totals: ChunkTotals
    engine: str
    chunks: int
    elapsed: float
    stopped_by_precision: bool


_WORKER: dict = {}


def _init_worker(raw: dict, engine: str, seed: int, alerts: bool, compiled: bool) -> None:
    keep_freed_memory()
    topo = Topology(model_from_dict(raw).model)
    _WORKER["engine"] = make_engine(engine, topo, seed, alerts=alerts, compiled=compiled)


def _run_in_worker(chunk: int, years: int, first_year: int) -> ChunkTotals:
    return _WORKER["engine"].run_chunk(chunk, years, first_year)


def _chunk_plan(years: int, chunk_years: int) -> list[int]:
    full, rest = divmod(years, chunk_years)
    return [chunk_years] * full + ([rest] if rest else [])


def _first_years(plan: list[int]) -> list[int]:
    """The run's index of each chunk's first year."""
    return list(itertools.accumulate(plan[:-1], initial=0))


def run_monte_carlo(topo: Topology, raw: dict, *, engine: str, seed: int, years: int,
                    budget_minutes: float, precision: float | None = None,
                    workers: int | None = None, progress: Callable[[int, int], None] | None = None,
                    chunk_years: int | None = None, alerts: bool = True) -> MonteCarloRun:
    """Simulate up to ``years`` years; see the module docstring for determinism and stopping."""
    started = time.perf_counter()
    plan = _chunk_plan(years, chunk_years or CHUNK_YEARS[engine])
    first_years = _first_years(plan)
    workers = workers or os.cpu_count() or 1
    workers = max(1, min(workers, len(plan)))
    parts: list[ChunkTotals] = []
    done_years = 0
    exceed = 0
    stopped = False

    def accept(part: ChunkTotals) -> bool:
        nonlocal done_years, exceed
        parts.append(part)
        done_years += part.years
        exceed += int((part.downtime > budget_minutes).sum())
        if progress is not None:
            progress(done_years, years)
        if precision is not None and len(parts) % CHECK_EVERY == 0:
            low, high = wilson(exceed, done_years)
            return (high - low) / 2 <= precision
        return False

    compiled = engine == "fast" and years >= COMPILED_MIN_YEARS
    if workers == 1:
        eng = make_engine(engine, topo, seed, alerts=alerts, compiled=compiled)
        with reuse_freed_memory():
            for index, n in enumerate(plan):
                if accept(eng.run_chunk(index, n, first_years[index])):
                    stopped = True
                    break
    else:
        if compiled:
            # loaded once here: the forked workers inherit the machine code
            from sim import kernels
            compiled = kernels.load() is not None
        ctx = multiprocessing.get_context("fork")
        with cf.ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=_init_worker,
                                    initargs=(raw, engine, seed, alerts, compiled)) as pool:
            ahead = workers * 2
            futures: dict[int, cf.Future] = {}
            next_submit = 0
            for index in range(len(plan)):
                while next_submit < len(plan) and next_submit < index + ahead:
                    futures[next_submit] = pool.submit(_run_in_worker, next_submit, plan[next_submit],
                                                       first_years[next_submit])
                    next_submit += 1
                if accept(futures.pop(index).result()):
                    stopped = True
                    for future in futures.values():
                        future.cancel()
                    break
    return MonteCarloRun(ChunkTotals.merge(parts), engine, len(parts),
                         time.perf_counter() - started, stopped)


def summarize_downtime(downtime: np.ndarray, budget_minutes: float) -> dict:
    """Distribution of yearly downtime and P(D > budget) with its 95 % Wilson interval."""
    n = len(downtime)
    p50, p95, p99 = np.percentile(downtime, [50, 95, 99]) if n else (0.0, 0.0, 0.0)
    top = float(max(np.percentile(downtime, 99.9) * 1.2, budget_minutes * 1.5)) if n else budget_minutes
    counts, edges = np.histogram(np.minimum(downtime, top), bins=40, range=(0.0, top))
    exceed = int((downtime > budget_minutes).sum())
    low, high = wilson(exceed, n)
    return {
        "downtime_minutes": {
            "mean": float(downtime.mean()) if n else 0.0, "p50": float(p50), "p95": float(p95),
            "p99": float(p99), "stderr": float(downtime.std(ddof=1) / math.sqrt(n)) if n > 1 else 0.0,
            "histogram": {"edges": [round(float(e), 4) for e in edges],
                          "counts": [int(c) for c in counts],
                          "note": "the last bin also holds every year above its upper edge"}},
        "p_exceed": {"estimate": exceed / n if n else 0.0, "ci_low": low, "ci_high": high,
                     "confidence": 0.95, "method": "wilson", "exceeding_years": exceed},
    }
