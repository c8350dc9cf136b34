"""Benchmark of the simulation engines on the reference topology.

Prints simulated years per second for the SimPy and the fast engine on one core (median
of repeated runs), their ratio, and the wall time to 1,000,000 simulated years with an
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


def years_per_second(topo, raw, engine: str, years: int, repeat: int) -> list[float]:
    rates = []
    for index in range(repeat):
        started = time.perf_counter()
        run_monte_carlo(topo, raw, engine=engine, seed=100 + index, years=years,
                        budget_minutes=topo.model.budget_minutes, workers=1)
        rates.append(years / (time.perf_counter() - started))
    return rates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--simpy-years", type=int, default=1_000)
    parser.add_argument("--fast-years", type=int, default=100_000)
    parser.add_argument("--million", type=int, default=1_000_000)
    args = parser.parse_args()

    loaded = load_model()
    topo = Topology(loaded.model)
    print(f"reference topology: {len(topo.slots)} slots, {len(topo.modes)} failure modes; "
          f"{os.cpu_count()} cores; load average {os.getloadavg()[0]:.2f}")
    simpy_rates = years_per_second(topo, loaded.raw, "simpy", args.simpy_years, args.repeat)
    fast_rates = years_per_second(topo, loaded.raw, "fast", args.fast_years, args.repeat)
    simpy_median, fast_median = statistics.median(simpy_rates), statistics.median(fast_rates)
    print(f"{'engine':<8}{'years/s (median, 1 core)':>28}{'runs':>40}{'target':>12}")
    print(f"{'simpy':<8}{simpy_median:>28,.0f}{str([round(r) for r in simpy_rates]):>40}{'2,000':>12}")
    print(f"{'fast':<8}{fast_median:>28,.0f}{str([round(r) for r in fast_rates]):>40}{'200,000':>12}")
    print(f"fast / simpy = {fast_median / simpy_median:,.0f}x")

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
