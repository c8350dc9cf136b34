"""Realistic run directories for the report tests, written per docs/contracts.md §2–§4, §7.

``write_run`` writes a complete run (run.json, experiments with journal.json, samples.csv
and ledger.jsonl, sim/result.json); ``write_half_failed_run`` one that stopped half way:
an experiment journal with status "failed" and errors, a planned experiment that never
started, and no simulation result. Everything is drawn from one seeded generator.
"""
from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np

T0 = 1_764_100_000.0          # unix seconds the run started
BUDGET = 52.56

EXPERIMENTS = {
    # name: (fault kind, target, failure mode, fault start, fault end, detection, recovery)
    "chat-server-crash": ("process.kill", "chat-us-east-1", "chat_server_crash", 30.0, 50.0, 11.8, 3.1),
    "postgres-partition": ("proxy.timeout", "chat-eu-west-1>pg-eu-west", "postgres_down", 30.0, 60.0, 14.2, 5.4),
    "nats-node-pause": ("process.pause", "nats-ap-south", "nats_node_down", 25.0, 45.0, 3.3, 1.2),
}


def write_run(run_dir: Path, *, seed: int = 1, experiments: list[str] | None = None,
              sim: bool = True, scale: float = 1.0, lose_data: bool = False,
              duration: float = 90.0, rate: float = 40.0, t0: float = T0) -> Path:
    """Write a complete run directory; ``scale`` multiplies every measured time (for comparisons)."""
    rng = np.random.default_rng(seed)
    names = experiments or list(EXPERIMENTS)
    run_dir.mkdir(parents=True, exist_ok=True)
    _dump(run_dir / "run.json", {
        "schema": "nineslab.run/1", "profile": "quick", "seed": seed,
        "versions": {"nineslab": "0.1.0", "python": "3.11.7"},
        "started_at": t0, "ended_at": t0 + 600, "planned": names,
        "experiments": [{"name": n, "status": "completed", "journal": f"experiments/{n}/journal.json"} for n in names],
        "steps": [{"name": "up", "status": "ok"}] + [{"name": f"experiment {n}", "status": "ok"} for n in names]
        + [{"name": "simulate", "status": "ok" if sim else "failed", "error": None if sim else "skipped by the test"}],
        "status": "completed", "errors": []})
    for i, name in enumerate(names):
        _write_experiment(run_dir / "experiments" / name, name, rng, start=t0 + i * (duration + 10),
                          duration=duration, rate=rate, scale=scale,
                          lose_data=lose_data and i == 0)
    if sim:
        write_sim(run_dir / "sim" / "result.json", rng, scale=scale)
    return run_dir


def write_half_failed_run(run_dir: Path, *, seed: int = 2) -> Path:
    """A run that failed half way: one good experiment, one failed mid-fault, one never started, no sim."""
    rng = np.random.default_rng(seed)
    run_dir.mkdir(parents=True, exist_ok=True)
    names = ["chat-server-crash", "nats-node-pause", "postgres-partition"]
    _dump(run_dir / "run.json", {
        "schema": "nineslab.run/1", "profile": "quick", "seed": seed,
        "versions": {"nineslab": "0.1.0", "python": "3.11.7"},
        "started_at": T0, "ended_at": T0 + 200, "planned": names,
        "experiments": [{"name": names[0], "status": "completed", "verdict": "passed"},
                        {"name": names[1], "status": "failed", "verdict": "error"}],
        "steps": [{"name": "up", "status": "ok"}, {"name": f"experiment {names[0]}", "status": "ok"},
                  {"name": f"experiment {names[1]}", "status": "failed",
                   "error": "nats-ap-south did not come back after SIGCONT within 30 s"},
                  {"name": "simulate", "status": "failed",
                   "error": "calibration found no usable journal for nats_node_down"}],
        "status": "failed",
        "errors": ["experiment nats-node-pause: nats-ap-south did not come back after SIGCONT within 30 s",
                   "simulate: calibration found no usable journal for nats_node_down"]})
    _write_experiment(run_dir / "experiments" / names[0], names[0], rng, start=T0, duration=90.0,
                      rate=40.0, scale=1.0, lose_data=False)
    _write_experiment(run_dir / "experiments" / names[1], names[1], rng, start=T0 + 100,
                      duration=90.0, rate=40.0, scale=1.0, lose_data=False, fail_at=35.0)
    return run_dir


def write_sim(path: Path, rng: np.random.Generator, *, scale: float = 1.0) -> None:
    years = 20_000
    modes = {"chat_server_crash": 0.9, "postgres_down": 4.1, "redis_down": 1.7, "nats_node_down": 0.6,
             "region_outage": 14.8, "bad_deploy": 6.2, "wan_degradation": 2.3}
    modes = {k: v * scale for k, v in modes.items()}
    draws = rng.lognormal(np.log(22 * scale), 0.9, years)
    draws[rng.random(years) < 0.3] *= 0.2
    edges = np.linspace(0, max(200.0, float(draws.max())), 81)
    counts, _ = np.histogram(draws, edges)
    p = float((draws > BUDGET).mean())
    half = 1.96 * np.sqrt(p * (1 - p) / years)
    monthly = np.full(12, draws.mean() / 12)
    cum = np.cumsum(rng.lognormal(np.log(draws.mean() / 12), 0.8, (2000, 12)), axis=1)
    _dump(path, {
        "schema": "nineslab.sim/1", "model": {"file": "sim/models/reference.yaml", "hash": "abc123"},
        "engine": "fast", "years": years, "seed": 1, "budget_minutes": BUDGET,
        "downtime_minutes": {"mean": float(draws.mean()), "p50": float(np.median(draws)),
                             "p95": float(np.quantile(draws, 0.95)), "p99": float(np.quantile(draws, 0.99)),
                             "stderr": float(draws.std() / np.sqrt(years)),
                             "histogram": {"edges": edges.tolist(), "counts": counts.tolist()}},
        "p_exceed": {"estimate": p, "ci_low": max(0.0, p - half), "ci_high": min(1.0, p + half),
                     "confidence": 0.95},
        "attribution": modes,
        "monthly": {"mean_burn": monthly.tolist(),
                    "p_exhausted_by_month": [float((cum[:, m] > BUDGET).mean()) for m in range(12)],
                    "cumulative_p05": np.quantile(cum, 0.05, axis=0).tolist(),
                    "cumulative_p95": np.quantile(cum, 0.95, axis=0).tolist()},
        "burn_rate_alerts": {"pages_per_year": 3.2, "mean_time_to_page_minutes": 4.5},
        "sensitivities": [
            {"parameter": "region_outage.rate", "low": 18.0 * scale, "high": 41.0 * scale, "swing_minutes": 23.0 * scale},
            {"parameter": "router.check_interval", "low": 24.0 * scale, "high": 33.0 * scale, "swing_minutes": 9.0 * scale},
            {"parameter": "postgres_down.duration", "low": 26.0 * scale, "high": 31.0 * scale, "swing_minutes": 5.0 * scale},
            {"parameter": "chat.replicas", "low": 27.5 * scale, "high": 29.0 * scale, "swing_minutes": 1.5 * scale},
        ],
        "calibration": {"router.detection": {"source": "measured", "n": 3, "from": ["RUN_DIR/experiments"]}},
        "gate": {"passed": p < 0.5, "reasons": [] if p < 0.5 else
                 [f"P(D > budget) = {p:.2f} exceeds the allowed 0.50"]}})


def _write_experiment(exp_dir: Path, name: str, rng: np.random.Generator, *, start: float,
                      duration: float, rate: float, scale: float, lose_data: bool,
                      fail_at: float | None = None) -> None:
    kind, target, mode, f_start, f_end, det, rec = EXPERIMENTS[name]
    det, rec = det * scale, rec * scale
    exp_dir.mkdir(parents=True, exist_ok=True)
    end = fail_at if fail_at is not None else duration
    # the outage users see: from fault start until detection + failover, then a blip at the end
    bad_from, bad_to = f_start, f_start + det + 0.4
    rows = []
    n = rng.poisson(rate * end)
    intended = np.sort(rng.uniform(0, end, n))
    for t in intended:
        in_bad = bad_from <= t < bad_to or f_end <= t < f_end + rec
        base = rng.lognormal(np.log(18), 0.35)
        if f_start <= t < f_end:
            base *= 2.5
        if in_bad and rng.random() < 0.7:
            outcome, lat = ("error" if rng.random() < 0.9 else "dropped"), rng.uniform(800, 3000)
        else:
            outcome, lat = "ok", base
        rows.append((start + t, start + t + 0.001, start + t + lat / 1000, lat, lat * 0.9, outcome,
                     "chat.send", "us-east", "" if outcome == "ok" else "timeout"))
    with (exp_dir / "samples.csv").open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["intended_ts", "start_ts", "end_ts", "latency_ms", "service_ms", "outcome",
                    "operation", "region", "error"])
        w.writerows(rows)
    per_second = []
    arr = np.array([(r[0] - start, r[3], r[5] == "ok") for r in rows], dtype=float)
    for s in range(int(end)):
        sel = arr[(arr[:, 0] >= s) & (arr[:, 0] < s + 1)]
        req = len(sel)
        ok = int(sel[:, 2].sum()) if req else 0
        lat = sel[:, 1] if req else np.array([0.0])
        per_second.append({"t": float(s), "requests": req, "errors": req - ok,
                           "availability": ok / req if req else 1.0,
                           "p50_ms": float(np.percentile(lat, 50)), "p99_ms": float(np.percentile(lat, 99))})

    def window(lo: float, hi: float) -> dict:
        sel = arr[(arr[:, 0] >= lo) & (arr[:, 0] < hi)]
        if not len(sel):
            return {}
        ok = int(sel[:, 2].sum())
        return {"requests": len(sel), "errors": len(sel) - ok, "availability": ok / len(sel),
                "p50_ms": float(np.percentile(sel[:, 1], 50)), "p99_ms": float(np.percentile(sel[:, 1], 99))}

    downtime = float(sum(1 for p in per_second if p["availability"] < 0.999))
    failed = fail_at is not None
    journal = {
        "schema": "nineslab.journal/1",
        "experiment": {"name": name, "title": name.replace("-", " ").capitalize(), "tags": ["chat"],
                       "file": f"chaos/experiments/{name}.yaml", "source": {}},
        "seed": 1, "versions": {"nineslab": "0.1.0", "python": "3.11.7"},
        "started_at": start - 2.0, "ended_at": start + end, "duration_seconds": end + 2.0, "t0": start,
        "status": "failed" if failed else "completed",
        "faults": [{"id": "f1", "kind": kind, "target": target, "targets": [target], "failure_mode": mode,
                    "start": start + f_start, "end": start + min(f_end, end), "rolled_back": not failed}],
        "slis": {"before": window(0, f_start), "during": window(f_start, f_end),
                 "after": window(f_end, end) if not failed else {}, "per_second": per_second},
        "measurements": [] if failed else [
            {"fault_id": "f1", "failure_mode": mode, "detection_seconds": det, "failover_seconds": 0.4,
             "recovery_seconds": rec, "downtime_seconds": downtime,
             "error_rate_during": 1 - window(f_start, f_end).get("availability", 1.0)}],
        "downtime_seconds": downtime, "budget_minutes_burned": downtime / 60,
        "hypothesis": {"before": {"met": True, "probes": []}, "during": [],
                       "after": {"met": not failed, "probes": [] if not failed else
                                 [{"name": "availability", "type": "sli", "met": False, "value": 0.62,
                                   "tolerance": ">= 0.999"}]}},
        "invariants": [] if failed else [
            {"name": "chat.no_loss", "ok": not lose_data,
             "counts": {"lost": 3 if lose_data else 0, "duplicated": 0, "out_of_order": 0, "phantom": 0},
             "examples": [{"anomaly": "lost", "id": m, "conv": "c1"} for m in ("m-1017", "m-1042", "m-1101")]
             if lose_data else [], "info": {}},
            {"name": "analytics.exactly_once", "ok": True, "counts": {"lost": 0, "duplicated": 0},
             "examples": []}],
        "verdict": "error" if failed else ("invariant_violated" if lose_data else "passed"),
        "score": None if failed else (0.0 if lose_data else 100.0 - downtime),
        "reasons": ["the run failed"] if failed else
                   (["invariant chat.no_loss violated: lost 3"] if lose_data else []),
        "errors": ["fault f1 could not be rolled back: nats-ap-south did not answer SIGCONT"] if failed else [],
    }
    _dump(exp_dir / "journal.json", journal)
    with (exp_dir / "ledger.jsonl").open("w") as fh:
        for i in range(5):
            fh.write(json.dumps({"kind": "chat", "id": f"m-{i}", "conv": "c1", "seq": i, "from": "u1",
                                 "to": "u2", "to_region": "us-east", "ts": start + i}) + "\n")


def _dump(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=1))
