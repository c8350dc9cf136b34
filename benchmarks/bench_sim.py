"""Benchmark of the simulation engines on the reference topology.

Prints simulated years per second for the SimPy engine (SimPy for interaction clusters),
the fast engine (its NumPy path, and its compiled kernels once loaded) and SimPy-everything
on one core (median of repeated runs, wall clock and CPU time), their ratios, what loading
the compiled kernels costs a fresh process (cold: Numba compiles them into an empty cache;
warm: it loads them from the cache), and the wall time to 1,000,000 simulated years with an
interval on P(D > budget) using every core.  Targets (issue 8): SimPy >= 2,000 years/s,
fast >= 200,000 years/s, 10^6 years in < 60 s.

``--baseline REV`` also measures the ``sim/`` package of git revision REV (written into a
temporary directory with ``git show``, never into the working tree) side by side: each
repeat runs the baseline and the current code alternately in fresh processes, so both see
the same load, and prints medians and current/baseline ratios - for short runs (NumPy path),
one long run in one process (``--long-years``; the compiled kernels, their loading counted)
and the million years on every core.

    PYTHONPATH=. python benchmarks/bench_sim.py [--repeat 3] [--simpy-years 1000]
                                                [--fast-years 100000] [--baseline 707a0ce]
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

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


REPO = Path(__file__).resolve().parent.parent


def _child(engine: str, years: int, seed: int, workers: int) -> None:
    """Measure one run in this process (its ``sim`` comes first on PYTHONPATH) and print JSON.

    ``wall``/``cpu`` count everything the run does, loading the compiled kernels included
    (``load_wall``/``load_cpu``: that part alone, when this tree has them and uses them).
    """
    from sim import montecarlo
    from sim.montecarlo import summarize_downtime

    loaded = load_model()
    topo = Topology(loaded.model)
    started, cpu_started, children_started = time.perf_counter(), time.process_time(), _children_cpu()
    if engine == "fast" and years >= getattr(montecarlo, "COMPILED_MIN_YEARS", float("inf")):
        from sim import kernels
        kernels.load()
    load_wall, load_cpu = time.perf_counter() - started, time.process_time() - cpu_started
    mc = run_monte_carlo(topo, loaded.raw, engine=engine, seed=seed, years=years,
                         budget_minutes=topo.model.budget_minutes, workers=workers)
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    all_cpu = cpu + _children_cpu() - children_started   # the worker processes', once they exited
    p = summarize_downtime(mc.totals.downtime, topo.model.budget_minutes)["p_exceed"]
    print(json.dumps({"wall": wall, "cpu": cpu, "all_cpu": all_cpu, "load_wall": load_wall, "load_cpu": load_cpu,
                      "mean": float(mc.totals.downtime.mean()),
                      "p": p["estimate"], "low": p["ci_low"], "high": p["ci_high"]}))


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def kernel_start_up() -> list[dict]:
    """Loading the compiled kernels in a fresh process: cold (an empty Numba cache, so it
    compiles), then warm (the cache just written), CPU and wall seconds."""
    code = ("import time; c, w = time.process_time(), time.perf_counter(); from sim import kernels; "
            "ok = kernels.load() is not None; "
            "print(time.process_time() - c, time.perf_counter() - w, ok)")
    runs = []
    with tempfile.TemporaryDirectory(prefix="bench-sim-numba-") as cache:
        env = dict(os.environ, NUMBA_CACHE_DIR=cache, PYTHONPATH=str(REPO))
        for state in ("cold", "warm", "warm"):
            out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True,
                                 text=True, env=env).stdout.split()
            runs.append({"cache": state, "cpu": float(out[0]), "wall": float(out[1]), "ok": out[2] == "True"})
    return runs


def _tree_of(rev: str, into: Path) -> Path:
    """The sim/ package of git revision ``rev`` written under ``into`` (git show, no checkout)."""
    names = subprocess.run(["git", "-C", str(REPO), "ls-tree", "-r", "--name-only", rev, "sim/"],
                           check=True, capture_output=True, text=True).stdout.split()
    for name in names:
        target = into / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(subprocess.run(["git", "-C", str(REPO), "show", f"{rev}:{name}"],
                                          check=True, capture_output=True).stdout)
    return into


def _measure(tree: Path, engine: str, years: int, seed: int, workers: int = 1) -> dict:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(tree), str(REPO)]))
    out = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--child", engine, str(years),
                          str(seed), str(workers)], check=True, capture_output=True, text=True, env=env)
    return json.loads(out.stdout.strip().splitlines()[-1])


def side_by_side(rev: str, args) -> None:
    """Baseline revision and current code alternately, medians and ratios."""
    with tempfile.TemporaryDirectory(prefix="bench-sim-") as tmp:
        trees = {"baseline": _tree_of(rev, Path(tmp)), "current": REPO}
        print(f"\nbaseline {rev} vs current (fresh process per run, alternating; "
              f"load average {os.getloadavg()[0]:.2f})")
        print(f"{'engine':<8}{'years':>9}{'baseline /s wall':>18}{'current /s wall':>17}{'ratio':>7}"
              f"{'baseline /s CPU':>17}{'current /s CPU':>16}{'ratio':>7}")
        for engine, years in (("simpy", args.simpy_years), ("fast", args.fast_years),
                              ("fast", args.long_years)):
            runs = {name: [] for name in trees}
            for index in range(args.repeat):
                for name, tree in trees.items():
                    runs[name].append(_measure(tree, engine, years, 100 + index))
            wall = {n: statistics.median(years / r["wall"] for r in rs) for n, rs in runs.items()}
            cpu = {n: statistics.median(years / r["cpu"] for r in rs) for n, rs in runs.items()}
            load = statistics.median(r["load_cpu"] for r in runs["current"])
            print(f"{engine:<8}{years:>9,}{wall['baseline']:>18,.0f}{wall['current']:>17,.0f}"
                  f"{wall['current'] / wall['baseline']:>6.2f}x{cpu['baseline']:>17,.0f}"
                  f"{cpu['current']:>16,.0f}{cpu['current'] / cpu['baseline']:>6.2f}x"
                  + (f"   (kernels loaded in {load:.2f} s CPU, counted)" if load > 0.01 else ""))
        workers = os.cpu_count() or 1
        walls = {name: [] for name in trees}
        cpus = {name: [] for name in trees}
        for _ in range(args.million_repeat):
            for name, tree in trees.items():
                r = _measure(tree, "fast", args.million, 1, workers)
                walls[name].append(r["wall"])
                cpus[name].append(r["all_cpu"])
                print(f"{args.million:,} years, fast, {workers} workers, {name}: {r['wall']:.1f} s wall, "
                      f"{r['all_cpu']:.1f} s CPU in all processes "
                      f"(kernels loaded in {r['load_wall']:.1f} s of it); "
                      f"mean {r['mean']:.2f} min, P(D > budget) = {100 * r['p']:.3f} % "
                      f"[{100 * r['low']:.3f}-{100 * r['high']:.3f} %]; load average {os.getloadavg()[0]:.2f}")
        base, cur = (statistics.median(walls[n]) for n in ("baseline", "current"))
        base_cpu, cur_cpu = (statistics.median(cpus[n]) for n in ("baseline", "current"))
        print(f"{args.million:,} years: median {base:.1f} s baseline, {cur:.1f} s current ({base / cur:.2f}x) wall; "
              f"{base_cpu:.1f} s and {cur_cpu:.1f} s CPU ({base_cpu / cur_cpu:.2f}x)")


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        engine, years, seed, workers = sys.argv[2], *map(int, sys.argv[3:6])
        _child(engine, years, seed, workers)
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--simpy-years", type=int, default=10_000)
    parser.add_argument("--fast-years", type=int, default=100_000)
    parser.add_argument("--long-years", type=int, default=500_000,
                        help="years of the long one-process side-by-side run (compiled kernels)")
    parser.add_argument("--million", type=int, default=1_000_000)
    parser.add_argument("--baseline", metavar="REV", help="also measure sim/ of this git revision")
    parser.add_argument("--million-repeat", type=int, default=1,
                        help="alternating baseline/current runs of the million years")
    args = parser.parse_args()

    loaded = load_model()
    topo = Topology(loaded.model)
    print(f"reference topology: {len(topo.slots)} slots, {len(topo.modes)} failure modes; "
          f"{os.cpu_count()} cores; load average {os.getloadavg()[0]:.2f}")
    from sim import montecarlo

    start_up = kernel_start_up()
    print("compiled kernels, loading in a fresh process: " + "; ".join(
        f"{r['cache']} cache {r['cpu']:.2f} s CPU, {r['wall']:.2f} s wall" + ("" if r["ok"] else " (NOT LOADED)")
        for r in start_up))
    # the SimPy target is for one core; the fast engine's is for the Monte Carlo, which runs it
    # in parallel over processes (the million years, below): one process is shown, not judged
    rows = [("simpy", args.simpy_years, "2,000", None), ("fast", args.fast_years, "(below)", None),
            ("fast", args.fast_years, "(below)", 0), ("simpy-full", max(args.simpy_years // 20, 50), "-", None)]
    medians = {}
    print(f"{'engine':<16}{'years/s wall':>10}{'years/s CPU':>14}   {'wall runs':<34}{'target':>10}")
    threshold = montecarlo.COMPILED_MIN_YEARS
    for engine, years, target, min_years in rows:
        # min_years 0: every run takes the compiled kernels (loaded above: not counted here)
        montecarlo.COMPILED_MIN_YEARS = threshold if min_years is None else min_years
        if min_years == 0:
            from sim import kernels
            kernels.load()
        wall, cpu = years_per_second(topo, loaded.raw, engine, years, args.repeat)
        label = engine + (", kernels" if min_years == 0 else "")
        medians[label] = statistics.median(wall)
        print(f"{label:<16}{medians[label]:>10,.0f}{statistics.median(cpu):>14,.0f}   "
              f"{str([round(r) for r in wall]):<34}{target:>10}")
    montecarlo.COMPILED_MIN_YEARS = threshold
    print(f"fast / simpy = {medians['fast'] / medians['simpy']:,.1f}x; "
          f"simpy / simpy-full = {medians['simpy'] / medians['simpy-full']:,.1f}x")

    # a fresh process: the kernels' loading is part of the million years' time
    r = _measure(REPO, "fast", args.million, 1, os.cpu_count() or 1)
    print(f"{args.million:,} years (fast, {os.cpu_count()} workers, fresh process): {r['wall']:.1f} s wall, "
          f"{r['all_cpu']:.1f} s CPU "
          f"({args.million / r['wall']:,.0f} years/s, kernels loaded in {r['load_wall']:.1f} s of it); "
          f"P(D > {topo.model.budget_minutes:g} min) = "
          f"{100 * r['p']:.3f} % [{100 * r['low']:.3f}-{100 * r['high']:.3f} %]  target < 60 s")
    rate = args.million / r["wall"]
    print(f"fast engine, target >= 200,000 years/s as the Monte Carlo runs it ({os.cpu_count()} processes, "
          f"loading counted): {rate:,.0f} years/s, {'met' if rate >= 200_000 else 'NOT met'}; "
          f"in one process, kernels loaded: {medians['fast, kernels']:,.0f} years/s wall")
    if args.baseline:
        side_by_side(args.baseline, args)


if __name__ == "__main__":
    main()
