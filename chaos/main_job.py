"""The main job (``nines run``): up → the profile's experiments under load → calibration and
simulation → report → gate → down, leaving one run directory with everything.

Every step runs even when an earlier one failed, as far as it can (a report of a half run
still says what went wrong); ``down`` always runs for a lab this job started (a lab that
was already running is left as it was found). ``run.json`` (``nineslab.run/1``) records each
step, its time and its error, and is rewritten after every step, so even a killed job leaves
a record::

    result = run_main_job(MainJobOptions(profile="quick", out_dir=Path("runs/ci"), state_dir=Path(".nines")))
    result["gate"]["exit_code"]
"""
from __future__ import annotations

import json
import logging
import os
import tempfile
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from chaos import gate as gate_mod, journal as journal_mod
from lab.errors import ExitCode, NinesError

log = logging.getLogger("nineslab.run")
SCHEMA = "nineslab.run/1"
SIM_YEARS = {"quick": 5_000, "full": 100_000}
SIM_SENSITIVITIES = {"quick": False, "full": True}     # tornado runs cost most of a quick job's minute


@dataclass
class MainJobOptions:
    profile: str = "quick"
    out_dir: Path = Path("runs")
    state_dir: Path = Path(".nines")
    seed: int = 1
    runtime: str = "local"
    topology_file: Path | None = None
    experiments: list[Any] | None = None          # default: the library's experiments of the profile
    sim_years: int | None = None
    time_scale: float = 1.0                       # experiments' schedules this many times as long
    settle_timeout: float = 120.0                 # most seconds to wait for the lab at rest between experiments
    budget_minutes: float = 52.56
    threshold: float = 0.05
    min_score: float | None = None
    say: Callable[[str], None] = print
    on_update: Callable[[dict], None] = lambda update: None
    clock: Callable[[], float] = time.time


@dataclass
class _Job:
    opts: MainJobOptions
    record: dict = field(default_factory=dict)

    def save(self) -> None:
        path = self.opts.out_dir / "run.json"
        fd, tmp = tempfile.mkstemp(prefix=".run-", suffix=".json", dir=self.opts.out_dir)
        with os.fdopen(fd, "w") as fh:
            json.dump(self.record, fh, indent=2, default=str)
            fh.write("\n")
        os.replace(tmp, path)

    def step(self, name: str, fn: Callable[[], Any]) -> tuple[bool, Any]:
        began = self.opts.clock()
        entry: dict[str, Any] = {"name": name, "status": "running", "started_at": began}
        self.record["steps"].append(entry)
        self.save()
        self.opts.say(f"run: {name} ...")
        try:
            value = fn()
            entry["status"] = "ok"
            return True, value
        except KeyboardInterrupt:
            entry["status"] = "interrupted"
            raise
        except NinesError as exc:
            entry.update(status="failed", error=str(exc))
            self.record["errors"].append(f"{name}: {exc}")
            self.opts.say(f"run: {name} failed: {exc}")
            return False, None
        except Exception as exc:  # noqa: BLE001 - a bug in one step must not stop the others
            entry.update(status="failed", error=f"internal error: {type(exc).__name__}: {exc}")
            self.record["errors"].append(f"{name}: internal error: {type(exc).__name__}: {exc}")
            log.error("step %s\n%s", name, traceback.format_exc())
            self.opts.say(f"run: {name} failed: {type(exc).__name__}: {exc}")
            return False, None
        finally:
            entry["seconds"] = round(self.opts.clock() - began, 3)
            self.save()


def run_main_job(opts: MainJobOptions) -> dict:
    from chaos.engine import EngineOptions, check_targets, run_experiment
    from chaos.experiment import library

    opts.out_dir = Path(opts.out_dir).resolve()
    opts.state_dir = Path(opts.state_dir).resolve()
    opts.out_dir.mkdir(parents=True, exist_ok=True)
    job = _Job(opts, {"schema": SCHEMA, "profile": opts.profile, "seed": opts.seed, "runtime": opts.runtime,
                      "time_scale": opts.time_scale,
                      "state_dir": str(opts.state_dir), "run_dir": str(opts.out_dir),
                      "versions": journal_mod.versions(), "started_at": opts.clock(), "ended_at": None,
                      "status": "running", "lab_started": False, "experiments": [], "steps": [], "errors": [],
                      "gate": None})
    job.save()
    experiments = opts.experiments if opts.experiments is not None else library(opts.profile)
    job.record["planned"] = [e.name for e in experiments]
    runtime = None
    try:
        ok, runtime_and_state = job.step("up", lambda: _up(opts))
        if ok:
            runtime, started, state = runtime_and_state
            job.record["lab_started"] = started
            if not started:
                opts.say(f"run: a lab already runs in {opts.state_dir} (profile {state.profile}); using it, "
                         f"and leaving it running afterwards")
        if ok:
            ok, _ = job.step("check experiments", lambda: [check_targets(e, state) for e in experiments])
        if ok:
            engine_opts = EngineOptions(state_dir=opts.state_dir, out_dir=opts.out_dir, seed=opts.seed,
                                        on_update=opts.on_update, clock=opts.clock, time_scale=opts.time_scale)
            for i, exp in enumerate(experiments):
                rest = _settle(opts, state) if i else None
                ran, j = job.step(f"experiment {exp.name}", lambda exp=exp: run_experiment(exp, engine_opts))
                job.record["experiments"].append({**_exp_entry(exp, j, opts.out_dir), "settle": rest})
                if j:
                    opts.say(f"run: {exp.name}: {j['verdict']} (score {j['score']:g}, downtime "
                             f"{j['downtime_seconds']:g} s)")
        years = opts.sim_years or SIM_YEARS.get(opts.profile, 20_000)
        sens = SIM_SENSITIVITIES.get(opts.profile, True)
        job.step("simulate", lambda: _simulate(opts, years, sens))
        job.step("report", lambda: _report(opts))
        job.record["status"] = "completed" if not job.record["errors"] else "failed"
    except KeyboardInterrupt:
        job.record["status"] = "interrupted"
        job.record["errors"].append("interrupted (Ctrl-C or SIGTERM)")
        opts.say("run: interrupted; stopping the lab")
    finally:
        if runtime is not None and job.record["lab_started"]:
            from lab.runtime.local import interrupts_deferred
            with interrupts_deferred():
                job.step("down", lambda: _down(opts, runtime))
        result = gate_mod.gate_run(opts.out_dir, budget_minutes=opts.budget_minutes, threshold=opts.threshold,
                                   min_score=opts.min_score)
        code = result.code
        if job.record["status"] in ("failed", "interrupted") and code == ExitCode.OK:
            code = ExitCode.LAB_ERROR
        if job.record["status"] == "interrupted":
            code = ExitCode.INTERRUPTED
        job.record["gate"] = {**result.to_json(), "exit_code": int(code), "result": code.name.lower()}
        job.record["ended_at"] = opts.clock()
        job.record["duration_seconds"] = round(job.record["ended_at"] - job.record["started_at"], 3)
        (opts.out_dir / "gate.json").write_text(json.dumps(job.record["gate"], indent=2) + "\n")
        job.save()
    return job.record


def _exp_entry(exp: Any, j: dict | None, out: Path) -> dict:
    path = out / "experiments" / exp.name / "journal.json"
    if not j:
        return {"name": exp.name, "status": "failed", "verdict": "error", "journal": str(path) if path.exists() else None}
    ms = j.get("measurements") or []
    return {"name": exp.name, "status": j["status"], "verdict": j["verdict"], "score": j["score"],
            "downtime_seconds": j["downtime_seconds"], "budget_minutes_burned": j["budget_minutes_burned"],
            "detection_seconds": [m.get("detection_seconds") for m in ms],
            "recovery_seconds": [m.get("recovery_seconds") for m in ms],
            "wall_seconds": j["duration_seconds"], "journal": str(path)}


def _settle(opts: MainJobOptions, state: Any) -> dict:
    """Wait for the lab at rest after the previous experiment (chaos.settle); say so when it took a while."""
    from chaos.settle import wait_for_rest
    regions = sorted({p.region for p in state.processes.values() if p.region})
    try:
        rest = wait_for_rest(dict(state.endpoints), regions, timeout=opts.settle_timeout)
    except Exception as exc:  # noqa: BLE001 - not knowing whether the lab rests must not skip an experiment
        log.error("settle\n%s", traceback.format_exc())
        return {"at_rest": None, "error": f"{type(exc).__name__}: {exc}"}
    if not rest["at_rest"]:
        opts.say(f"run: the lab is not at rest after {rest['waited_seconds']:g} s ({'; '.join(rest['busy'])}); "
                 f"starting the next experiment anyway")
    elif rest["waited_seconds"] >= 1.0:
        opts.say(f"run: waited {rest['waited_seconds']:.0f} s for the lab to be at rest")
    return rest


def _up(opts: MainJobOptions):
    from lab.runtime import LabConfig, get_runtime
    runtime = get_runtime(opts.runtime)
    proxy_url = None
    try:
        from chaos.proxy.launch import external_url
        proxy_url = external_url(os.environ)
    except ModuleNotFoundError:
        pass
    config = LabConfig(state_dir=opts.state_dir, profile=opts.profile, runtime=opts.runtime,
                       topology_file=opts.topology_file, proxy_url=proxy_url)
    result = runtime.up(config, lambda line: opts.say(f"up: {line}"))
    return runtime, result.started, result.state


def _down(opts: MainJobOptions, runtime: Any) -> list[str]:
    from lab.state import find_state
    state = find_state(opts.state_dir)
    return runtime.down(state, lambda line: None) if state is not None else []


def _simulate(opts: MainJobOptions, years: int, sensitivities: bool) -> str:
    import sim
    result = sim.run_simulation(years=years, seed=opts.seed, calibrate=[str(opts.out_dir)],
                                sensitivities=sensitivities, threshold=opts.threshold)
    path = opts.out_dir / "sim" / "result.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    sim.write_result(result, path)
    return str(path)


def _report(opts: MainJobOptions) -> dict:
    import reports
    return {k: str(v) for k, v in reports.build_report(opts.out_dir).items()}
