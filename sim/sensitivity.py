"""Sensitivity (tornado) and what-if: which parameter moves the most minutes of downtime.

Each parameter is set to a low and a high value (rates, durations and times are scaled
x0.5 and x2; the router's check interval 2 s and 30 s (Route 53's fast and standard
intervals); shares x0.5 and x2 capped at 1) and the model rerun with the **same seed**:
every failure mode draws from its own stream (:mod:`sim.streams`), so the two runs share
their random numbers and the difference in mean downtime is the parameter's effect, not
noise.  Parameters are ranked by the swing |high - low| in minutes a year.
"""
from __future__ import annotations

import concurrent.futures as cf
import copy
import multiprocessing
import os

from sim.model import model_from_dict
from sim.montecarlo import run_monte_carlo
from sim.topology import Topology

SCALE_LOW, SCALE_HIGH = 0.5, 2.0


def _scale(spec, factor: float):
    """Scale a duration or a distribution spec of a raw model by ``factor``."""
    from sim.distributions import parse_distribution

    dist = parse_distribution(spec) if not isinstance(spec, str) or spec not in ("router", "none") else None
    if dist is None:
        return spec
    desc = dist.scaled(factor).describe()
    kind = desc["dist"]
    if kind == "fixed":
        return desc["value_hours"]
    if kind == "lognormal":
        return {"dist": "lognormal", "median": desc["median_hours"], "sigma": desc["sigma"]}
    if kind == "exponential":
        return {"dist": "exponential", "mean": desc["mean_hours"]}
    if kind == "weibull":
        return {"dist": "weibull", "shape": desc["shape"], "scale": desc["scale_hours"]}
    if kind == "uniform":
        return {"dist": "uniform", "low": desc["low_hours"], "high": desc["high_hours"]}
    if kind == "empirical":
        return {"dist": "empirical", "samples": [v * factor for v in dist.scaled(1.0).values]}
    return spec


def candidate_parameters(raw: dict) -> list[tuple[str, object, object]]:
    """(name, low raw model, high raw model) for every parameter of the tornado."""
    out = []

    def variant(path, value):
        new = copy.deepcopy(raw)
        node = new
        for part in path[:-1]:
            node = node.setdefault(part, {})
        node[path[-1]] = value
        return new

    router = raw.get("router", {})
    out.append(("router.check_interval", variant(("router", "check_interval"), "2s"),
                variant(("router", "check_interval"), "30s")))
    if "failover" in router:
        out.append(("router.failover", variant(("router", "failover"), _scale(router["failover"], SCALE_LOW)),
                    variant(("router", "failover"), _scale(router["failover"], SCALE_HIGH))))
    for name, mode in sorted(raw.get("failure_modes", {}).items()):
        base = ("failure_modes", name)
        if "rate" in mode:
            from sim.quantities import parse_rate
            per_year = parse_rate(mode["rate"]) * 8760.0
            out.append((f"{name}.rate", variant(base + ("rate",), per_year * SCALE_LOW),
                        variant(base + ("rate",), per_year * SCALE_HIGH)))
        else:
            cfr = mode["deploys"]["change_failure_rate"]
            low = copy.deepcopy(mode["deploys"]); low["change_failure_rate"] = cfr * SCALE_LOW
            high = copy.deepcopy(mode["deploys"]); high["change_failure_rate"] = min(1.0, cfr * SCALE_HIGH)
            out.append((f"{name}.change_failure_rate", variant(base + ("deploys",), low),
                        variant(base + ("deploys",), high)))
        out.append((f"{name}.duration", variant(base + ("duration",), _scale(mode["duration"], SCALE_LOW)),
                    variant(base + ("duration",), _scale(mode["duration"], SCALE_HIGH))))
        if isinstance(mode.get("detection"), (dict, str, int, float)) and mode.get("detection") not in ("router", "none"):
            out.append((f"{name}.detection",
                        variant(base + ("detection",), _scale(mode["detection"], SCALE_LOW)),
                        variant(base + ("detection",), _scale(mode["detection"], SCALE_HIGH))))
    scaling = raw.get("autoscaling")
    if isinstance(scaling, dict) and "scale_out_delay" in scaling:
        delay = scaling["scale_out_delay"]
        out.append(("autoscaling.scale_out_delay",
                    variant(("autoscaling", "scale_out_delay"), _scale(delay, SCALE_LOW)),
                    variant(("autoscaling", "scale_out_delay"), _scale(delay, SCALE_HIGH))))
    for gname, group in sorted(raw.get("groups", {}).items()):
        if not group.get("failover") and group.get("share", 1.0) < 1.0:
            share = group.get("share", 1.0)
            out.append((f"groups.{gname}.share", variant(("groups", gname, "share"), share * SCALE_LOW),
                        variant(("groups", gname, "share"), min(1.0, share * SCALE_HIGH))))
    for rname, region in raw.get("regions", {}).items():
        cap = region.get("capacity", 1.5)
        out.append((f"regions.{rname}.capacity", variant(("regions", rname, "capacity"), cap * 0.75),
                    variant(("regions", rname, "capacity"), cap * 1.5)))
        break  # one region's capacity stands for the capacity knob
    return out


def mean_downtime(raw: dict, *, engine: str, seed: int, years: int) -> float:
    topo = Topology(model_from_dict(raw).model)
    mc = run_monte_carlo(topo, raw, engine=engine, seed=seed, years=years,
                         budget_minutes=topo.model.budget_minutes, workers=1, alerts=False)
    return float(mc.totals.downtime.mean())


def _mean_downtime_job(args) -> float:
    raw, engine, seed, years = args
    return mean_downtime(raw, engine=engine, seed=seed, years=years)


def tornado(raw: dict, *, engine: str, seed: int, years: int, limit: int | None = None,
            workers: int | None = None, only: tuple[str, ...] | None = None) -> list[dict]:
    """Rank parameters by the minutes a year they move (common random numbers).

    ``only`` keeps the parameters whose names start with one of the given prefixes.
    """
    candidates = [c for c in candidate_parameters(raw) if only is None or c[0].startswith(only)]
    jobs = [(raw, engine, seed, years)]
    for _, low_raw, high_raw in candidates:
        jobs += [(low_raw, engine, seed, years), (high_raw, engine, seed, years)]
    workers = max(1, min(workers or os.cpu_count() or 1, len(jobs)))
    if workers == 1:
        means = [_mean_downtime_job(job) for job in jobs]
    else:
        with cf.ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork")) as pool:
            means = list(pool.map(_mean_downtime_job, jobs, chunksize=4))
    base = means[0]
    rows = []
    for index, (name, _, _) in enumerate(candidates):
        low, high = means[1 + 2 * index], means[2 + 2 * index]
        rows.append({"parameter": name, "low": low, "high": high, "base": base,
                     "swing_minutes": abs(high - low), "years": years})
    rows.sort(key=lambda r: -r["swing_minutes"])
    return rows[:limit] if limit else rows


def what_if(raw_base: dict, raw_variant: dict, *, engine: str, seed: int, years: int) -> dict:
    """Mean downtime of a base and a variant model on common random numbers, and the difference."""
    base = mean_downtime(raw_base, engine=engine, seed=seed, years=years)
    variant = mean_downtime(raw_variant, engine=engine, seed=seed, years=years)
    return {"base": base, "variant": variant, "difference": variant - base}
