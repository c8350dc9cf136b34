"""Runs a scenario headless in Locust child processes and merges what they recorded.

The ``nines`` process never imports Locust (it monkey-patches gevent into its importer):
:func:`run` starts ``python -m locust`` — one local process, or a master and N workers
in Locust's own master/worker mode — polls their progress files, forwards SIGINT/SIGTERM
as a graceful stop (so samples and ledger are flushed), stops every child it started on
any way out, then merges the parts into the run directory (:mod:`loadtests.summary`).

    cfg = RunConfig(scenario=get_scenario("trivial"), rate=500, duration=10, out=Path("out"),
                    host="http://127.0.0.1:8000")
    doc = run(cfg, progress=print)        # the load.json document
"""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from lab.errors import DependencyError, LabError, UsageError
from loadtests.arrivals import parse_shape
from loadtests.endpoints import LabEndpoints, default_state_dir, load_endpoints, need, require_local
from loadtests.run_id import check_run_id, new_run_id
from loadtests.scenarios import Scenario
from loadtests.summary import merge_run

STOP_GRACE = 15.0        # seconds a child gets to flush after a graceful stop, before SIGTERM
KILL_GRACE = 5.0


@dataclass
class RunConfig:
    scenario: Scenario
    duration: float
    out: Path
    rate: float | None = None          # open model
    users: int | None = None           # closed model
    concurrency: int | None = None     # open model pool (default: the scenario's)
    shape: str = "constant"
    seed: int = 1
    workers: int = 1
    state_dir: Path | None = None
    host: str | None = None
    max_lateness: float = 5.0
    timeout: float = 10.0
    run_id: str | None = None          # in every user name (loadtests.run_id); default: a fresh one
    extra_env: dict[str, str] = field(default_factory=dict)

    def validate(self) -> None:
        if (self.rate is None) == (self.users is None):
            raise UsageError("give exactly one of --rate (open model) or --users (closed model)")
        if self.rate is not None:
            parse_shape(self.shape, self.rate, self.duration)   # raises UsageError on a bad shape
        if self.users is not None and self.users < 1:
            raise UsageError(f"--users must be at least 1, not {self.users}")
        if self.duration <= 0:
            raise UsageError(f"--duration must be a positive number of seconds, not {self.duration:g}")
        if self.workers < 1:
            raise UsageError(f"--workers must be at least 1, not {self.workers}")
        if self.concurrency is not None and self.concurrency < 1:
            raise UsageError(f"--concurrency must be at least 1, not {self.concurrency}")
        if self.run_id is not None:
            check_run_id(self.run_id)

    @property
    def open(self) -> bool:
        return self.rate is not None

    @property
    def pool(self) -> int:
        if self.open:
            return max(self.workers, self.concurrency or self.scenario.concurrency)
        return max(self.workers, self.users or 1)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def resolve_host(cfg: RunConfig) -> tuple[str | None, str]:
    """The ``--host`` to pass Locust and the state dir (only scenarios on the lab need one)."""
    state_dir = str(default_state_dir(str(cfg.state_dir) if cfg.state_dir else None).resolve())
    if cfg.host:
        return require_local(cfg.host, "--host"), state_dir
    if not cfg.scenario.needs_lab:
        raise UsageError(f"scenario {cfg.scenario.name!r} needs --host http://127.0.0.1:PORT")
    eps: LabEndpoints = load_endpoints(Path(state_dir))
    if cfg.scenario.host_endpoint:
        return need(getattr(eps, cfg.scenario.host_endpoint), cfg.scenario.host_endpoint, state_dir), state_dir
    return None, state_dir     # the users find their servers in the state file themselves


def locust_commands(cfg: RunConfig, host: str | None, state_dir: str, run_id: str,
                    master_port: int | None = None) -> list[tuple[str, list[str]]]:
    """The command lines to start: ``[("local", argv)]`` or a master and its workers. Pure."""
    out = cfg.out.resolve()
    base = [sys.executable, "-m", "locust", "-f", cfg.scenario.locustfile_arg(),
            "--loglevel", "INFO"]
    users = cfg.pool
    if cfg.open:
        # a backstop only (the harness quits when the schedule is over); generous, because
        # Locust arms it on gevent's clock, which a slow start leaves seconds behind
        run_time = cfg.duration + cfg.max_lateness + cfg.timeout + 20.0
        spawn_rate = float(users)
    else:   # the users stop themselves after the duration; -t is only a backstop
        run_time = cfg.duration + cfg.timeout + 20.0
        spawn_rate = max(1.0, users / 2.0)
    lead = base + [
        "--headless", "--only-summary", "-u", str(users), "-r", f"{spawn_rate:g}",
        "-t", f"{int(run_time + 0.999)}s", "--stop-timeout", "2",
        "--csv", str(out / "locust"), "--html", str(out / "locust.html"),
        "--json-file", str(out / "locust_stats"),
        "--logfile", str(out / "logs" / "locust-master.log"),
        "--nines-rate", f"{cfg.rate or 0:g}", "--nines-shape", cfg.shape,
        "--nines-duration", f"{cfg.duration:g}", "--nines-seed", str(cfg.seed),
        "--nines-out", str(out), "--nines-max-lateness", f"{cfg.max_lateness:g}",
        "--nines-state-dir", state_dir, "--nines-timeout", f"{cfg.timeout:g}",
        "--nines-concurrency", str(users), "--nines-run-id", run_id,
    ]
    if host:
        lead += ["--host", host]
    if cfg.workers == 1:
        return [("local", lead)]
    assert master_port is not None
    master = lead + ["--master", "--master-bind-host", "127.0.0.1", "--master-bind-port", str(master_port),
                     "--expect-workers", str(cfg.workers), "--expect-workers-max-wait", "30"]
    cmds = [("master", master)]
    for i in range(cfg.workers):
        cmds.append((f"worker-{i}", base + ["--worker", "--master-host", "127.0.0.1",
                                              "--master-port", str(master_port),
                                              "--logfile", str(out / "logs" / f"locust-worker-{i}.log")]))
    return cmds


class _Children:
    """The Locust processes of one run; stops every one of them on any way out."""

    def __init__(self) -> None:
        self.procs: dict[str, subprocess.Popen] = {}

    def start(self, name: str, argv: list[str], log: Path, env: dict[str, str]) -> None:
        with open(log, "ab") as fh:
            self.procs[name] = subprocess.Popen(argv, stdout=fh, stderr=subprocess.STDOUT, env=env,
                                                stdin=subprocess.DEVNULL, start_new_session=True)

    def lead(self) -> subprocess.Popen:
        return self.procs.get("local") or self.procs["master"]

    def alive(self) -> list[str]:
        return [n for n, p in self.procs.items() if p.poll() is None]

    def signal(self, sig: int, names: list[str] | None = None) -> None:
        for n in names or list(self.procs):
            p = self.procs[n]
            if p.poll() is None:
                try:
                    p.send_signal(sig)
                except ProcessLookupError:
                    pass

    def wait(self, deadline: float) -> bool:
        while self.alive() and time.monotonic() < deadline:
            time.sleep(0.05)
        return not self.alive()

    def stop(self) -> None:
        """Graceful stop (SIGINT to the lead; it tells workers), then SIGTERM, then SIGKILL."""
        if not self.alive():
            return
        self.signal(signal.SIGINT, [n for n in ("local", "master") if n in self.procs])
        if self.wait(time.monotonic() + STOP_GRACE):
            return
        self.signal(signal.SIGTERM)
        if self.wait(time.monotonic() + KILL_GRACE):
            return
        self.signal(signal.SIGKILL)
        self.wait(time.monotonic() + KILL_GRACE)


def read_progress(out: Path) -> dict[str, int]:
    """Cumulative counts so far over every worker's ``parts/progress-*.json`` of a run in ``out``."""
    tot = {"ok": 0, "error": 0, "dropped": 0, "late": 0, "ledger": 0}
    for p in (out / "parts").glob("progress-*.json"):
        try:
            d = json.loads(p.read_text())
        except (OSError, ValueError):
            continue
        for k in tot:
            tot[k] += int(d.get(k) or 0)
    return tot


def run(cfg: RunConfig, progress: Callable[[str], None] = lambda _: None) -> dict[str, Any]:
    """Run the scenario to completion (or to SIGINT/SIGTERM) and return the load.json document."""
    cfg.validate()
    host, state_dir = resolve_host(cfg)
    out = cfg.out.resolve()
    if (out / "parts").exists():
        for old in (out / "parts").iterdir():
            old.unlink()
    (out / "logs").mkdir(parents=True, exist_ok=True)
    (out / "parts").mkdir(parents=True, exist_ok=True)
    run_id = cfg.run_id or new_run_id()
    cmds = locust_commands(cfg, host, state_dir, run_id, _free_port() if cfg.workers > 1 else None)
    env = {**os.environ, **cfg.extra_env, "PYTHONUNBUFFERED": "1"}
    repo = str(Path(__file__).resolve().parent.parent)
    env["PYTHONPATH"] = repo + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")

    stop_requested: list[int] = []
    previous = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}

    def on_signal(signum: int, _frame: Any) -> None:
        stop_requested.append(signum)

    children = _Children()
    started_at = time.time()
    status = "completed"
    deadline = time.monotonic() + cfg.duration + cfg.max_lateness + cfg.timeout + 60.0
    try:
        for s in previous:
            signal.signal(s, on_signal)
        for name, argv in cmds:
            children.start(name, argv, out / "logs" / f"{name}.out", env)
        model = f"{cfg.rate:g}/s {cfg.shape}" if cfg.open else f"{cfg.users} users"
        progress(f"load: {cfg.scenario.name}, {model}, {cfg.duration:g} s, {cfg.workers} process(es), "
                 f"{cfg.pool} users -> {out}")
        last_report = time.monotonic()
        while children.alive():
            if stop_requested:
                status = "interrupted"
                progress("load: stopping (signal); flushing samples and ledger")
                break
            if time.monotonic() > deadline:
                status = "failed"
                progress("load: Locust did not finish in time; stopping it")
                break
            if "master" in children.procs and children.procs["master"].poll() is None and \
                    any(children.procs[n].poll() not in (None, 0, 1) for n in children.procs if n != "master"):
                status = "failed"
                progress("load: a worker process died; stopping the run")
                break
            time.sleep(0.1)
            if time.monotonic() - last_report >= 2.0:
                last_report = time.monotonic()
                p = read_progress(out)
                elapsed = time.time() - started_at
                progress(f"load: {elapsed:5.1f}s ok={p['ok']} errors={p['error']} dropped={p['dropped']} "
                         f"late={p['late']} ledger={p['ledger']}")
    finally:
        children.stop()
        for s, handler in previous.items():
            signal.signal(s, handler)
    lead_code = children.lead().returncode
    ended_at = time.time()
    if not list((out / "parts").glob("worker-*.json")):
        log = (out / "logs" / f"{cmds[0][0]}.out")
        tail = log.read_text(errors="replace").strip().splitlines()[-5:] if log.exists() else []
        raise DependencyError(f"Locust left no results in {out} (exit code {lead_code}); "
                              f"its log {log} ends: {' | '.join(tail) or '(empty)'}")
    if status == "completed" and lead_code not in (0, 1):
        status = "failed"
    meta = {"scenario": cfg.scenario.name, "model": "open" if cfg.open else "closed",
            "rate": cfg.rate, "shape": cfg.shape if cfg.open else None, "users": cfg.pool,
            "workers": cfg.workers, "duration_s": cfg.duration if status == "completed"
            else min(cfg.duration, ended_at - started_at),
            "seed": cfg.seed, "run_id": run_id, "host": host, "state_dir": state_dir,
            "started_at": started_at, "ended_at": ended_at, "status": status,
            "locust_exit_code": lead_code, "signal": stop_requested[0] if stop_requested else None}
    try:
        return merge_run(out, meta)
    except (OSError, ValueError, KeyError) as exc:
        raise LabError(f"could not merge the load results in {out}: {exc}") from exc
