"""Control against experiment, judged like Kayenta's NetflixACAJudge: for each metric a
Mann-Whitney U test of the experiment (fault windows) against the control (clean windows),
the Hodges-Lehmann shift with its distribution-free confidence interval, and an effect size.

A metric is *High* when the shift's whole interval lies above ``+bound`` (and the test is
significant), *Low* when below ``-bound``, else *Pass*; ``bound = tolerance × |median(control)|``
(the allowed relative change, 25 % by default; a metric with a zero control median uses the
interval alone). Success (0/1 per request) is judged on the difference of success rates
with a normal interval and an absolute bound (1 point by default), because its
Hodges-Lehmann shift is 0 whenever both medians are 1. Whether High or Low is bad depends on the metric (latency up, success down).
Score = 100 × Pass / all metrics. Each metric records the U statistic (of the experiment
side), the p-value and two effect sizes: the common-language effect size ``cles`` =
P(experiment > control) and the rank-biserial correlation 2·cles − 1. Fewer than
``min_samples`` on either side sets ``few_samples`` and adds a warning: the test has little
power there (Kayenta users hit this, orca#2299).
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy import stats as sps

MAX_PAIRS = 2_000_000     # pairwise differences beyond this are subsampled (seeded)
BAD_DIRECTION = {"latency_ms": "increase", "success": "decrease", "availability_per_second": "decrease"}


def hodges_lehmann(control: np.ndarray, experiment: np.ndarray, *, confidence: float = 0.95,
                   rng: np.random.Generator | None = None) -> tuple[float, float, float]:
    """(estimate, ci_low, ci_high) of the shift experiment − control."""
    n1, n2 = len(control), len(experiment)
    if n1 * n2 > MAX_PAIRS:
        rng = rng or np.random.default_rng(0)
        k = int(math.sqrt(MAX_PAIRS))
        control = rng.choice(control, size=min(n1, k), replace=False)
        experiment = rng.choice(experiment, size=min(n2, k), replace=False)
        n1, n2 = len(control), len(experiment)
    diffs = np.sort((experiment[:, None] - control[None, :]).ravel())
    m = diffs.size
    est = float(np.median(diffs))
    z = sps.norm.ppf(0.5 + confidence / 2)
    k = int(math.floor(n1 * n2 / 2 - z * math.sqrt(n1 * n2 * (n1 + n2 + 1) / 12)))
    k = min(max(k, 0), m - 1)
    return est, float(diffs[k]), float(diffs[m - 1 - k])


def compare(control: list[float], experiment: list[float], *, metric: str = "latency_ms",
            tolerance: float = 0.25, confidence: float = 0.95, min_samples: int = 50,
            success_bound: float = 0.01,
            rng: np.random.Generator | None = None) -> dict:
    c = np.asarray(control, dtype=float)
    e = np.asarray(experiment, dtype=float)
    few = bool(c.size < min_samples or e.size < min_samples)
    out: dict[str, Any] = {"metric": metric, "n_control": int(c.size), "n_experiment": int(e.size),
                           "few_samples": few, "warnings": []}
    if few:
        out["warnings"].append(f"few samples (control {c.size}, experiment {e.size}, want >= {min_samples}): "
                               f"the test has little power")
    if c.size == 0 or e.size == 0:
        out.update(classification="NoData", u_statistic=None, p_value=None, estimate=None, ci=None, cles=None)
        return out
    if np.array_equal(np.unique(c), np.unique(e)) and c.size == e.size and np.array_equal(np.sort(c), np.sort(e)):
        out.update(classification="Pass", u_statistic=c.size * e.size / 2, p_value=1.0, estimate=0.0,
                   ci=[0.0, 0.0], cles=0.5, rank_biserial=0.0,
                   median_control=float(np.median(c)), median_experiment=float(np.median(e)))
        return out
    try:
        res = sps.mannwhitneyu(e, c, alternative="two-sided")
        u, p = float(res.statistic), float(res.pvalue)
    except ValueError:          # all values identical across both groups
        u, p = c.size * e.size / 2, 1.0
    if metric == "success":
        # 0/1 data: the Hodges-Lehmann shift is 0 whenever both medians are 1, so judge the
        # difference in success rates (normal interval) with an absolute bound instead
        pc, pe = float(c.mean()), float(e.mean())
        est = pe - pc
        se = math.sqrt(pc * (1 - pc) / c.size + pe * (1 - pe) / e.size)
        z = sps.norm.ppf(0.5 + confidence / 2)
        lo, hi = est - z * se, est + z * se
        bound = success_bound
    else:
        est, lo, hi = hodges_lehmann(c, e, confidence=confidence, rng=rng)
        bound = tolerance * abs(float(np.median(c)))
    significant = p < (1 - confidence)
    if significant and lo > bound:
        cls = "High"
    elif significant and hi < -bound:
        cls = "Low"
    else:
        cls = "Pass"
    bad = BAD_DIRECTION.get(metric, "either")
    harmful = (cls == "High" and bad in ("increase", "either")) or (cls == "Low" and bad in ("decrease", "either"))
    cles = u / (c.size * e.size)                        # P(experiment > control), ties count half
    out.update(classification=cls, harmful=harmful, u_statistic=u, p_value=round(p, 6), estimate=round(est, 6),
               ci=[round(lo, 6), round(hi, 6)], bound=round(bound, 6),
               cles=round(cles, 4), rank_biserial=round(2 * cles - 1, 4),
               median_control=float(np.median(c)), median_experiment=float(np.median(e)),
               relative_shift=round(est / float(np.median(c)), 4) if np.median(c) else None)
    return out


def judge(metrics: dict[str, tuple[list[float], list[float]]], **kw: Any) -> dict:
    """Every metric (name -> (control, experiment)); score = 100·Pass/all, Kayenta-style.

    Here only a harmful change fails a metric: latency going down under a fault is no alarm.
    """
    results = [compare(c, e, metric=name, **kw) for name, (c, e) in metrics.items()]
    counted = [r for r in results if r["classification"] != "NoData"]
    passed = sum(1 for r in counted if not r.get("harmful"))
    score = round(100.0 * passed / len(counted), 2) if counted else None
    warnings = [f"{r['metric']}: {w}" for r in results for w in r["warnings"]]
    return {"score": score, "metrics": results, "warnings": warnings}


def split_samples(samples: list[Any], fault_windows: list[tuple[float, float]], *, settle: float = 0.0,
                  end: float | None = None) -> tuple[list[Any], list[Any]]:
    """(control, experiment): samples outside every fault window (and its settle time) vs inside one."""
    control, experiment = [], []
    for s in samples:
        t = s.intended_ts
        if end is not None and t >= end:
            continue
        if any(a <= t < b for a, b in fault_windows):
            experiment.append(s)
        elif not any(b <= t < b + settle for a, b in fault_windows):
            control.append(s)
    return control, experiment


def metric_values(samples: list[Any], metric: str) -> list[float]:
    if metric == "latency_ms":
        return [s.latency_ms for s in samples if s.ok]
    if metric == "success":
        return [1.0 if s.ok else 0.0 for s in samples]
    if metric == "availability_per_second":
        buckets: dict[int, list[bool]] = {}
        for s in samples:
            buckets.setdefault(int(s.intended_ts), []).append(s.ok)
        return [sum(v) / len(v) for _, v in sorted(buckets.items())]
    raise ValueError(f"unknown metric {metric!r}")
