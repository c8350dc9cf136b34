"""``run_simulation``: the one entry point the CLI, ``nines run`` and the reports call.

It loads and overrides the model, calibrates it from experiment journals, picks an
engine, runs the Monte Carlo, carries calibration uncertainty into P(blown year), ranks
sensitivities, and returns the ``nineslab.sim/1`` result dict with its gate verdict.
"""
from __future__ import annotations

import time
from typing import Callable

import numpy as np

from lab.errors import UsageError
from sim import gate
from sim.calibration import calibrate_model, parameter_record
from sim.engine_fast import unsupported
from sim.model import load_model, model_from_dict
from sim.montecarlo import run_monte_carlo
from sim.result import build_result
from sim.sensitivity import tornado
from sim.topology import Topology

ENGINES = ("auto", "fast", "simpy", "simpy-full")
UNCERTAINTY_REPLICATES = 20


def choose_engine(topo: Topology, engine: str) -> str:
    if engine not in ENGINES:
        raise UsageError(f"unknown engine {engine!r}; choose one of {', '.join(ENGINES)}")
    reasons = unsupported(topo)
    if engine == "fast" and reasons:
        raise UsageError("the fast engine cannot run this model (" + "; ".join(reasons)
                         + "); use --engine simpy or auto")
    if engine == "auto":
        return "simpy" if reasons else "fast"
    return engine


def pick_engine(model_path: str | None = None, *, overrides: dict[str, str] | None = None,
                regions: int | None = None, engine: str = "auto") -> str:
    """The engine ``run_simulation`` would use for this model and request."""
    loaded = load_model(model_path, overrides=overrides or {}, regions=regions)
    return choose_engine(Topology(loaded.model), engine)


def run_simulation(model_path: str | None = None, *, years: int, seed: int,
                   calibrate: list[str] | tuple[str, ...] = (), overrides: dict[str, str] | None = None,
                   regions: int | None = None, engine: str = "auto", precision: float | None = None,
                   workers: int | None = None, progress: Callable[[int, int], None] | None = None,
                   sensitivities: bool = True, threshold: float = 0.05) -> dict:
    """Project a year of downtime against the budget; return the ``nineslab.sim/1`` result."""
    if years < 1:
        raise UsageError(f"--years must be at least 1, got {years}")
    if precision is not None and not 0 < precision < 1:
        raise UsageError(f"--precision is a half-width of a probability, between 0 and 1; got {precision}")
    started = time.perf_counter()
    loaded = load_model(model_path, overrides=overrides or {}, regions=regions)
    raw = loaded.raw
    calibration = None
    if calibrate:
        calibration = calibrate_model(raw, list(calibrate))
        raw = calibration.raw
    model = model_from_dict(raw, name=loaded.file).model
    topo = Topology(model)
    engine_name = choose_engine(topo, engine)
    budget = model.budget_minutes

    mc = run_monte_carlo(topo, raw, engine=engine_name, seed=seed, years=years, budget_minutes=budget,
                         precision=precision, workers=workers, progress=progress)
    result = build_result(
        totals=mc.totals, names=topo.attribution_names,
        model_info={"file": loaded.file, "hash": loaded.hash, "name": model.name,
                    "overrides": dict(overrides or {}), "regions": list(model.regions)},
        engine=engine_name, seed=seed, budget_minutes=budget, slo=model.slo,
        run_info={"chunks": mc.chunks, "simulate_seconds": round(mc.elapsed, 3),
                  "years_per_second": round(mc.totals.years / mc.elapsed, 1) if mc.elapsed else None,
                  "requested_years": years, "precision": precision,
                  "stopped_by_precision": mc.stopped_by_precision})
    result["calibration"] = parameter_record(loaded.raw, calibration)

    if calibration is not None and calibration.replicates:
        result["p_exceed"].update(_calibration_uncertainty(calibration, engine_name, seed, years, budget))
    if overrides or regions is not None:
        result["what_if"] = _what_if(model_path, raw_variant=raw, totals=mc.totals, engine=engine_name,
                                     seed=seed, years=mc.totals.years, calibrate=calibrate,
                                     overrides=overrides or {}, regions=regions, workers=workers)
    if sensitivities:
        result["sensitivities"] = tornado(raw, engine=engine_name, seed=seed,
                                          years=_sensitivity_years(engine_name, years), workers=workers)
    passed, reasons = gate.evaluate(result, threshold=threshold, budget_minutes=budget)
    result["gate"] = {"passed": passed, "reasons": reasons, "threshold": threshold}
    result["run"]["total_seconds"] = round(time.perf_counter() - started, 3)
    return result


def _what_if(model_path, *, raw_variant, totals, engine, seed, years, calibrate, overrides, regions,
             workers) -> dict:
    """The baseline on the same random numbers, and the paired difference of the what-if."""
    base_raw = load_model(model_path).raw
    if calibrate:
        base_raw = calibrate_model(base_raw, list(calibrate)).raw
    base_topo = Topology(model_from_dict(base_raw).model)
    base_engine = choose_engine(base_topo, "auto") if engine == "fast" and unsupported(base_topo) else engine
    base = run_monte_carlo(base_topo, base_raw, engine=base_engine, seed=seed, years=years,
                           budget_minutes=base_topo.model.budget_minutes, workers=workers,
                           alerts=False).totals
    diff = totals.downtime - base.downtime
    budget = base_topo.model.budget_minutes
    return {
        "changes": {**overrides, **({"regions": regions} if regions is not None else {})},
        "baseline_mean_minutes": float(base.downtime.mean()),
        "mean_minutes": float(totals.downtime.mean()),
        "difference_minutes": float(diff.mean()),
        "difference_stderr": float(diff.std(ddof=1) / np.sqrt(len(diff))) if len(diff) > 1 else None,
        "baseline_p_exceed": float((base.downtime > budget).mean()),
        "method": "common random numbers: same seed, one stream per failure mode and location",
    }


def _sensitivity_years(engine: str, years: int) -> int:
    # common random numbers make differences precise with few years
    return min(years, {"fast": 4_000, "simpy": 2_000}.get(engine, 200))


def _calibration_uncertainty(calibration, engine: str, seed: int, years: int, budget: float) -> dict:
    """Two-level Monte Carlo: rerun on bootstrap refits of the measurements."""
    per = max(500 if engine != "simpy-full" else 100,
              min(years // 4, 50_000 if engine != "simpy-full" else 1_000))
    estimates = []
    for index, raw in enumerate(calibration.replicates[:UNCERTAINTY_REPLICATES]):
        topo = Topology(model_from_dict(raw).model)
        mc = run_monte_carlo(topo, raw, engine=engine, seed=seed + 7919 * (index + 1), years=per,
                             budget_minutes=budget, workers=1, alerts=False)
        estimates.append(float((mc.totals.downtime > budget).mean()))
    lo, hi = np.percentile(estimates, [2.5, 97.5])
    return {"parameter_interval": [float(lo), float(hi)],
            "parameter_uncertainty": {"method": "bootstrap of the journal measurements",
                                      "replicates": len(estimates), "years_per_replicate": per,
                                      "estimates": estimates}}
