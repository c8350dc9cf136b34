"""The chaos engine: runs an experiment against the running lab and writes its journal.

::

    opts = EngineOptions(state_dir=".nines", out_dir="runs/2026-11-25", seed=1)
    journal = run_experiment(load_experiment("chaos/experiments/chat-server-crash.yaml"), opts)

One run: heal faults a crashed engine left → plan every fault (targets checked against the
state file, errors name the experiment's line) → start the load → wait for its first arrival
(t0) → on a 0.1 s tick: roll back faults whose time is up, check the live steady state before
the first fault, apply faults whose time has come, run live probes while faults are active,
pull the brake when a stop condition holds → roll back everything (also on error, Ctrl-C,
SIGTERM; chaos.fault_session) → run the experiment's extra rollbacks → let the load finish →
check integrity invariants → analyse (chaos.analysis) → write ``journal.json``.

A Ctrl-C still writes the journal (status ``interrupted``) and then re-raises.
"""
from __future__ import annotations

import logging
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from chaos import analysis as analysis_mod, detection, interleave, journal as journal_mod, recovery
from chaos.experiment import Experiment
from chaos.fault_session import FaultSession
from chaos.faults.base import drivers_for_state
from chaos.faults.load import shape_args
from chaos.load_process import LoadProcess, load_argv
from chaos.probes import run_action, run_live
from chaos.slis import read_samples
from chaos.stop_conditions import accumulate, live_availability, recent_availability, stop_reason
from lab.errors import LabError, NinesError

log = logging.getLogger("nineslab.chaos")
TICK_SECONDS = 0.1
LIVE_WINDOW_SECONDS = 5      # the live view's availability: the last five complete seconds


@dataclass
class EngineOptions:
    state_dir: Path
    out_dir: Path
    seed: int = 1
    load_start_timeout: float = 60.0
    integrity_settle_seconds: float = 20.0
    clock: Callable[[], float] = time.time
    sleep: Callable[[float], None] = time.sleep
    on_update: Callable[[dict], None] = lambda update: None
    handle_signals: bool = True
    controller: Any = None              # process controller override (tests)
    load_argv: Callable[..., list[str]] = load_argv
    time_scale: float = 1.0             # every experiment's schedule this many times as long (CI: 0.5)


@dataclass
class _Run:
    exp: Experiment
    opts: EngineOptions
    exp_dir: Path
    status: str = "completed"
    aborted: str | None = None
    errors: list[str] = field(default_factory=list)
    timeline: list[dict] = field(default_factory=list)
    live: list[dict] = field(default_factory=list)
    series: list[dict] = field(default_factory=list)
    rollbacks: list[dict] = field(default_factory=list)
    actions: list[dict] = field(default_factory=list)
    planned: dict = field(default_factory=dict)
    t0: float | None = None
    t_end: float | None = None
    load: LoadProcess | None = None
    healed: list[str] = field(default_factory=list)


def check_targets(exp: Experiment, state: Any, *, controller: Any = None) -> None:
    """Plan every fault against the lab without applying anything: a ConfigError names the line."""
    drivers = drivers_for_state(state, controller=controller)
    for i, fault in enumerate(exp.faults):
        prefix = fault.kind.split(".", 1)[0]
        driver = drivers.get(prefix)
        if driver is None:
            raise LabError(f"{exp.file}: {fault.kind} needs the fault proxy, which this lab does not run")
        driver.plan(fault, experiment=exp.name, path=exp.file, line=exp.line_of("faults", i, "target"))


def link_roles(state: Any) -> dict[str, tuple[str, str]]:
    out = {}
    for name, link in state.links.items():
        target = state.processes.get(link.target)
        out[name] = (link.source, target.role if target else link.target)
    return out


def run_experiment(exp: Experiment, opts: EngineOptions) -> dict:
    from lab.state import load_state

    exp_dir = Path(opts.out_dir) / "experiments" / exp.name
    exp_dir.mkdir(parents=True, exist_ok=True)
    exp = interleave.expand(exp.scaled(opts.time_scale))   # interleaved: one fault per on-window
    run = _Run(exp, opts, exp_dir)
    run.timeline = [{"id": f.id, "kind": f.kind, "target": f.target, "targets": [],
                     "failure_mode": f.failure_mode or f.kind.replace(".", "_"), "at": f.at, "for": f.duration,
                     "start": None, "end": None, "rolled_back": False} for f in exp.faults]
    started_at = opts.clock()
    interrupted: BaseException | None = None
    state = None
    try:
        state = load_state(opts.state_dir)
        run.healed = recovery.heal_leftovers(opts.state_dir)
        _execute(run, state)
    except KeyboardInterrupt as exc:
        run.status, interrupted = "interrupted", exc
        run.errors.append("interrupted (Ctrl-C or SIGTERM); every fault was rolled back")
    except NinesError as exc:
        run.status = "failed"
        run.errors.append(str(exc))
    except Exception as exc:  # noqa: BLE001 - a bug must still leave a journal and no faults
        run.status = "failed"
        run.errors.append(f"internal error: {type(exc).__name__}: {exc}")
        log.error("engine error\n%s", traceback.format_exc())
    finally:
        if run.load is not None and run.load.alive():
            run.load.stop()
    journal = _finish(run, state, started_at)
    journal["time_scale"] = opts.time_scale
    journal_mod.write(journal, exp_dir / "journal.json")
    if interrupted is not None:
        raise interrupted
    return journal


def _execute(run: _Run, state: Any) -> None:
    exp, opts = run.exp, run.opts
    drivers = drivers_for_state(state, controller=opts.controller)
    endpoints = dict(state.endpoints)
    session = FaultSession(str(opts.state_dir), drivers, experiment=exp.name, clock=opts.clock,
                           handle_signals=opts.handle_signals)
    with session:
        planned = {f.id: session.plan(f, path=exp.file, line=_fault_line(exp, f.id)) for f in exp.faults}
        run.planned = planned
        for row in run.timeline:
            row["targets"] = planned[row["id"]].targets
            if planned[row["id"]].params.get("regions"):
                row["regions"] = planned[row["id"]].params["regions"]
        argv = opts.load_argv(scenario=exp.load.scenario, rate=exp.load.rate, duration=exp.load.duration,
                              out=run.exp_dir, seed=opts.seed, state_dir=str(opts.state_dir),
                              extra=[*exp.load.args, *shape_args(exp.faults)])
        run.load = LoadProcess(argv, run.exp_dir, clock=opts.clock)
        run.load.start()
        run.t0 = run.load.wait_generating(opts.load_start_timeout, opts.sleep)
        _loop(run, session, planned, endpoints)
    # faults are rolled back here (the with block), then the experiment's own undo steps
    for rb in exp.rollbacks:
        run.rollbacks.append(_extra_rollback(rb, drivers, state, opts))
    if run.status == "completed":
        for probe in exp.hypothesis.probes:
            if probe.type != "sli" and "after" in probe.phases:
                run.live.append({**run_live(probe, endpoints), "phase": "after", "t": opts.clock()})
    if run.load is not None:
        if run.aborted:
            run.load.stop()
        else:
            remaining = run.t0 + exp.load.duration - opts.clock()
            if not run.load.wait(remaining + 60.0):
                run.errors.append("the load generator overran its duration by 60 s; stopped it")
                run.load.stop()
    if session.errors:       # a fault that could not be undone leaves the lab broken: not a result
        run.errors.extend(session.errors)
        run.status = "failed"


def _fault_line(exp: Experiment, fault_id: str) -> int | None:
    """The line of a fault's target in the file (a toggled fault: that of the fault it came from)."""
    ids = [fault_id, interleave.origin_id(fault_id)]
    for i, f in enumerate(exp.source.get("faults") or []):
        if isinstance(f, dict) and f.get("id", f"f{i + 1}") in ids:
            return exp.line_of("faults", i, "target")
    return None


def _loop(run: _Run, session: FaultSession, planned: dict, endpoints: dict[str, str]) -> None:
    exp, opts = run.exp, run.opts
    pending = sorted(exp.faults, key=lambda f: (f.at, f.id))
    actions = sorted(exp.actions, key=lambda a: a.at)
    active: dict[str, Any] = {}
    rows = {r["id"]: r for r in run.timeline}
    before_checked = False
    next_probe = 0.0
    last = {"ok": 0, "error": 0, "dropped": 0}
    live_probes = [p for p in exp.hypothesis.probes if p.type != "sli"]
    while True:
        now = opts.clock()
        t = now - run.t0
        for fid, fault in list(active.items()):
            if t >= fault.end:
                session.rollback(fid)
                del active[fid]
        while pending and t >= pending[0].at:
            fault = pending.pop(0)
            if not before_checked:
                before_checked = True
                failed = []
                for probe in live_probes:
                    if "before" in probe.phases:
                        r = {**run_live(probe, endpoints), "phase": "before", "t": opts.clock()}
                        run.live.append(r)
                        if not r["met"]:
                            failed.append(f"{probe.name} = {r['value']!r} ({r.get('error') or r['tolerance']})")
                if failed:
                    run.aborted = "steady state not met before the first fault: " + "; ".join(failed)
                    run.status = "aborted"
                    return
            start = opts.clock()
            session.apply(planned[fault.id])
            rows[fault.id]["start"] = start
            active[fault.id] = fault
        while actions and t >= actions[0].at:
            result = run_action(actions.pop(0), endpoints, clock=opts.clock)
            result["t"] = round(result["start"] - run.t0, 3)
            run.actions.append(result)
        if active and now >= next_probe:
            next_probe = now + exp.hypothesis.interval_seconds
            for probe in live_probes:
                if "during" in probe.phases:
                    run.live.append({**run_live(probe, endpoints), "phase": "during", "t": opts.clock()})
        counters = run.load.counters()
        accumulate(run.series, t, {k: counters[k] - last[k] for k in last})
        last = counters
        complete = run.series[:-1]          # the current second is not over yet
        reason = stop_reason(complete, exp.stop, exp.slo)
        opts.on_update(_update(run, t, active, complete))
        if reason:
            run.aborted, run.status = reason, "aborted"
            return
        if not pending and not active and not actions and (not run.load.alive() or t >= exp.load.duration):
            return
        opts.sleep(TICK_SECONDS)


def _update(run: _Run, t: float, active: dict, series: list[dict]) -> dict:
    avail = recent_availability(series, LIVE_WINDOW_SECONDS)
    down = sum(1 for r in series if (a := live_availability(r)) is not None and a < run.exp.slo.availability)
    return {"experiment": run.exp.name, "t": t, "duration": run.exp.load.duration,
            "active": [f"{f.kind} {','.join(f.targets)}" for f in active.values()],
            "availability": avail, "downtime_seconds": down,
            "requests": sum(r["ok"] + r["error"] + r["dropped"] for r in series),
            "faults_done": sum(1 for a in run.planned.values() if a.rollback_started_at is not None),
            "faults": len(run.timeline)}


def _extra_rollback(rb: Any, drivers: dict, state: Any, opts: EngineOptions) -> dict:
    targets = [rb.target] if isinstance(rb.target, str) else list(rb.target or [])
    try:
        if rb.action == "http":
            from chaos.probes import run_action
            result = run_action(rb, dict(state.endpoints), clock=opts.clock)
            return {"action": "http", "targets": [rb.url], "ok": result.get("status", 500) < 400,
                    **{k: result[k] for k in ("status", "error") if k in result}}
        if rb.action == "proxy.reset":
            drivers["proxy"].reset()
        elif rb.action == "proxy.restore":
            for t in targets:
                drivers["proxy"].proxy.restore(t)
        else:
            controller = drivers["process"].controller
            op = "start" if rb.action == "process.start" else "resume"
            for t in targets:
                getattr(controller, op)(t)
        return {"action": rb.action, "targets": targets, "ok": True}
    except Exception as exc:  # noqa: BLE001 - record, do not hide the experiment's results
        return {"action": rb.action, "targets": targets, "ok": False, "error": str(exc)}


def _settle_timeline(run: _Run) -> None:
    """Fault ends and rollback flags from the session's records: also after an interrupt."""
    for row in run.timeline:
        applied = run.planned.get(row["id"])
        rolled_at = applied.rolled_back_at if applied is not None else None
        row["rolled_back"] = row["start"] is None or rolled_at is not None
        if applied is not None and row["start"] is not None:
            # the fault ends when its undo begins; how long the undo took is recorded beside it
            row["end"] = applied.rollback_started_at or rolled_at
            row["rolled_back_at"] = rolled_at
            if applied.params.get("measured"):   # the driver measured its own undo (a restore's RTO)
                row["measured"] = applied.params["measured"]


def _finish(run: _Run, state: Any, started_at: float) -> dict:
    exp, opts = run.exp, run.opts
    _settle_timeline(run)
    ended_at = opts.clock()
    load_doc = run.load.load_json() if run.load else None
    if run.t0 is None:
        analysis = journal_mod.empty_analysis()
        analysis["reasons"] = list(run.errors)
        invariants: list[dict] = []
    else:
        t_end = run.t0 + exp.load.duration
        if run.status != "completed":
            t_end = min(t_end, ended_at)
        samples = read_samples(run.exp_dir / "samples.csv")
        events = detection.read_events(opts.state_dir, since=run.t0 - 1, until=ended_at + 1)
        invariants = _invariants(run, state, load_doc) if run.status in ("completed", "aborted") else []
        try:
            analysis = analysis_mod.analyse(
                exp, t0=run.t0, t_end=t_end, timeline=run.timeline, samples=samples, events=events,
                live_probes=run.live, invariants=invariants, status=run.status, aborted_reason=run.aborted,
                actions=run.actions,
                link_roles=link_roles(state) if state is not None else None,
                rng=np.random.default_rng(opts.seed))
        except Exception as exc:  # noqa: BLE001
            log.error("analysis failed\n%s", traceback.format_exc())
            run.errors.append(f"analysis failed: {type(exc).__name__}: {exc}")
            run.status = "failed"
            analysis = journal_mod.empty_analysis()
        if not samples and run.status == "completed":
            run.errors.append("the load generator wrote no samples")
    if run.status == "failed" and analysis["verdict"] != "error":
        analysis["verdict"], analysis["score"] = "error", 0.0
    if run.errors and analysis["verdict"] == "error" and not analysis["reasons"]:
        analysis["reasons"] = list(run.errors)
    return journal_mod.build(exp, seed=opts.seed, started_at=started_at, ended_at=ended_at, t0=run.t0,
                             status=run.status, timeline=run.timeline, analysis=analysis, invariants=invariants,
                             errors=run.errors, load=load_doc, healed=run.healed, rollbacks=run.rollbacks,
                             aborted_reason=run.aborted, actions=run.actions)


def _invariants(run: _Run, state: Any, load_doc: dict | None) -> list[dict]:
    from chaos.integrity import readers
    exp, opts = run.exp, run.opts
    if not exp.invariants or state is None:
        return []
    ledger = _read_ledger(run.exp_dir / "ledger.jsonl")
    endpoints = dict(state.endpoints)
    regions = sorted({p.region for p in state.processes.values() if p.region})
    # Chat is checked by conversation: each run's users are its own (the load generator puts a
    # fresh run id in their names), so the ledger's conversations hold this run's messages only.
    # The analytics speed layer is checked over the run's seconds: from its first send (t0 lags
    # the first arrival; the generator reports progress about once a second) to now.
    samples = read_samples(run.exp_dir / "samples.csv")
    first = min((s.intended_ts for s in samples if s.operation.endswith(".send")), default=run.t0)
    since, until = min(first, run.t0) - 0.2, opts.clock()
    out = []
    for name in exp.invariants:
        try:
            if name == "chat.no_loss":
                indeterminate = sum(1 for s in samples if s.outcome == "error" and "send" in s.operation)
                out.append(readers.check_chat_run(endpoints, regions, ledger, indeterminate=indeterminate,
                                                  settle_seconds=opts.integrity_settle_seconds))
            elif name == "analytics.totals":
                out.append(readers.check_analytics_run(endpoints, ledger, since=since, until=until,
                                                       settle_seconds=opts.integrity_settle_seconds))
        except Exception as exc:  # noqa: BLE001 - a checker that cannot read is an error, not a pass
            out.append({"name": name, "ok": None, "counts": {}, "examples": [],
                        "info": {"error": f"{type(exc).__name__}: {exc}"}})
    migration = [n for n in exp.invariants if n.startswith("migration.")]
    if migration:
        try:
            out.extend(readers.check_migration_run(endpoints, ledger, want=migration,
                                                   settle_seconds=opts.integrity_settle_seconds))
        except Exception as exc:  # noqa: BLE001
            out.extend({"name": n, "ok": None, "counts": {}, "examples": [],
                        "info": {"error": f"{type(exc).__name__}: {exc}"}} for n in migration)
    return out


def _read_ledger(path: Path) -> list[dict]:
    import json
    out = []
    try:
        for line in path.read_text().splitlines():
            try:
                out.append(json.loads(line))
            except ValueError:
                continue
    except OSError:
        pass
    return out


def run_experiments(experiments: list[Experiment], opts: EngineOptions) -> list[dict]:
    """Check every experiment's targets first, then run them one after another."""
    from lab.state import load_state
    state = load_state(opts.state_dir)
    for exp in experiments:
        check_targets(exp.scaled(opts.time_scale), state, controller=opts.controller)
    return [run_experiment(exp, opts) for exp in experiments]
