"""Benchmark of the simulation engines on the reference topology.

Prints simulated years per second for the SimPy engine (SimPy for interaction clusters),
the fast engine and SimPy-everything on one core (median of repeated runs, wall clock and
CPU time), their ratios, and the wall time to 1,000,000 simulated years with an
interval on P(D > budget) using every core.  Targets (issue 8): SimPy >= 2,000 years/s,
fast >= 200,000 years/s, 10^6 years in < 60 s.  Runs in well under three minutes.

    python benchmarks/bench_sim.py [--repeat 3] [--simpy-years 1000] [--fast-years 100000]
"""
from __future__ import annotations

import argparse
import os
import statistics
import time

from sim.model import load_model
from sim.montecarlo import run_monte_carlo
from sim.topology import Topology


def years_per_second(topo, raw, engine: str, years: int, repeat: int) -> tuple[list[float], list[float]]:
    """Wall-clock and CPU-time rates of ``repeat`` single-process runs."""
    wall, cpu = [], []
    for index in range(repeat):
        started, cpu_started = time.perf_counter(), time.process_time()
        run_monte_carlo(topo, raw, engine=engine, seed=100 + index, years=years,
                        budget_minutes=topo.model.budget_minutes, workers=1)
        wall.append(years / (time.perf_counter() - started))
        cpu.append(years / (time.process_time() - cpu_started))
    return wall, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--simpy-years", type=int, default=10_000)
    parser.add_argument("--fast-years", type=int, default=100_000)
    parser.add_argument("--million", type=int, default=1_000_000)
    args = parser.parse_args()

    loaded = load_model()
    topo = Topology(loaded.model)
    print(f"reference topology: {len(topo.slots)} slots, {len(topo.modes)} failure modes; "
          f"{os.cpu_count()} cores; load average {os.getloadavg()[0]:.2f}")
    rows = [("simpy", args.simpy_years, "2,000"), ("fast", args.fast_years, "200,000"),
            ("simpy-full", max(args.simpy_years // 20, 50), "-")]
    medians = {}
    print(f"{'engine':<12}{'years/s wall':>14}{'years/s CPU':>14}   {'wall runs':<34}{'target':>10}")
    for engine, years, target in rows:
        wall, cpu = years_per_second(topo, loaded.raw, engine, years, args.repeat)
        medians[engine] = statistics.median(wall)
        print(f"{engine:<12}{medians[engine]:>14,.0f}{statistics.median(cpu):>14,.0f}   "
              f"{str([round(r) for r in wall]):<34}{target:>10}")
    print(f"fast / simpy = {medians['fast'] / medians['simpy']:,.1f}x; "
          f"simpy / simpy-full = {medians['simpy'] / medians['simpy-full']:,.1f}x")

    started = time.perf_counter()
    mc = run_monte_carlo(topo, loaded.raw, engine="fast", seed=1, years=args.million,
                         budget_minutes=topo.model.budget_minutes, workers=os.cpu_count())
    elapsed = time.perf_counter() - started
    from sim.montecarlo import summarize_downtime

    p = summarize_downtime(mc.totals.downtime, topo.model.budget_minutes)["p_exceed"]
    print(f"{args.million:,} years (fast, {os.cpu_count()} workers): {elapsed:.1f} s "
          f"({args.million / elapsed:,.0f} years/s); P(D > {topo.model.budget_minutes:g} min) = "
          f"{100 * p['estimate']:.3f} % [{100 * p['ci_low']:.3f}-{100 * p['ci_high']:.3f} %]  target < 60 s")


if __name__ == "__main__":
    main()
