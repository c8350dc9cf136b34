"""Locust glue: the nineslab options, one :class:`Generator` per process, and the event wiring.

Importing this module (every locustfile does) registers:

- command-line options ``--nines-*`` (so a plain ``locust -f loadtests/locustfile_chat.py``
  works too, closed model by default);
- a ``request`` listener that turns every Locust request event into a sample row and
  HDR records (intended time, when a user passed one in the event's ``context``);
- per-process setup on ``test_start`` and a flush on ``test_stop``/``quitting``/exit, so a
  SIGTERM or Ctrl-C still leaves complete part files;
- the ``nines_done`` message: in master/worker mode each worker reports when its share of
  the arrival schedule is over and the master quits once every worker has.

Part files per generator process go to ``<out>/parts/`` (samples, ledger, a JSON record
with encoded histograms, dispatch and health figures); :mod:`loadtests.runner` merges them.
"""
from __future__ import annotations

import atexit
import json
import logging
import os
import random
import time
from pathlib import Path
from typing import Any, Hashable

import gevent
from locust import events
from locust.env import Environment
from locust.runners import MasterRunner, WorkerRunner

from loadtests.arrivals import intended_offsets, parse_shape, partition
from loadtests.dispatcher import Arrival, Dispatcher
from loadtests.health import CpuSampler
from loadtests.hdr import LatencyBook
from loadtests.ledger import LedgerWriter
from loadtests.run_id import check_run_id, new_run_id
from loadtests.samples import Sample, SampleWriter

log = logging.getLogger("nineslab.load")
_GEN: "Generator | None" = None
_DONE_WORKERS: set[int] = set()


@events.init_command_line_parser.add_listener
def _options(parser: Any) -> None:
    g = parser.add_argument_group("nineslab", "open-model load, samples and ledger (docs/load.md)")
    g.add_argument("--nines-rate", type=float, default=0.0,
                   help="Open model: total arrivals per second over all processes (0: closed model).")
    g.add_argument("--nines-shape", default="constant",
                   help="Arrival shape: constant, poisson, step, spike, diurnal (NAME:k=v,...).")
    g.add_argument("--nines-duration", type=float, default=0.0,
                   help="Seconds of arrivals in the open model (default: --run-time).")
    g.add_argument("--nines-seed", type=int, default=1, help="Seed of the arrival schedule and user choices.")
    g.add_argument("--nines-run-id", default="",
                   help="Token in every user name, so this run's users are its own (default: a fresh one).")
    g.add_argument("--nines-out", default="", help="Directory for samples, ledger and histograms (empty: none).")
    g.add_argument("--nines-max-lateness", type=float, default=5.0,
                   help="Seconds after its intended time an arrival may still start; later ones are dropped.")
    g.add_argument("--nines-state-dir", default="", help="Lab state directory (default $NINES_STATE_DIR or .nines).")
    g.add_argument("--nines-concurrency", type=int, default=0,
                   help="Open model: the users in the pool (sets the backfill interval of the cross-check view).")
    g.add_argument("--nines-timeout", type=float, default=10.0, help="Seconds before a request counts as failed.")


class Generator:
    """Everything one generator process records: samples, ledger, histograms, health."""

    def __init__(self, env: Environment, index: int, count: int) -> None:
        opts = env.parsed_options
        self.env, self.index, self.count = env, index, count
        self.rate: float = float(getattr(opts, "nines_rate", 0.0) or 0.0)
        self.open = self.rate > 0
        self.seed = int(getattr(opts, "nines_seed", 1))
        self.rng = random.Random(self.seed * 1000 + index)
        # the seed fixes the choices; the run id keeps two runs' users apart (loadtests.run_id)
        self.run_id = check_run_id(getattr(opts, "nines_run_id", "") or new_run_id())
        self.timeout = float(getattr(opts, "nines_timeout", 10.0))
        self.state_dir = getattr(opts, "nines_state_dir", "") or ""
        limit = float(getattr(opts, "nines_duration", 0.0) or getattr(opts, "run_time", 0) or 0.0)
        # open model: the schedule needs an end (60 s by default); closed: none means until stopped
        duration = limit or 60.0
        self.duration = duration
        self.closed_limit: float | None = limit or None
        self.max_lateness = float(getattr(opts, "nines_max_lateness", 5.0))
        self.shape = parse_shape(getattr(opts, "nines_shape", "constant"), self.rate, duration) if self.open else None
        self.dispatcher: Dispatcher | None = None
        users = max(1, int(getattr(opts, "nines_concurrency", 0) or getattr(opts, "num_users", 1) or 1))
        self.book = LatencyBook(expected_interval_ms=1000.0 * users / self.rate if self.open else None)
        out = getattr(opts, "nines_out", "") or ""
        self.parts = Path(out) / "parts" if out else None
        if self.parts:
            self.parts.mkdir(parents=True, exist_ok=True)
        tag = f"{index}-{os.getpid()}"     # the pid too: parts never collide, whatever Locust does
        self.samples = SampleWriter(self.parts / f"samples-{tag}.csv") if self.parts else None
        self.ledger = LedgerWriter(self.parts / f"ledger-{tag}.jsonl") if self.parts else None
        self.tag = tag
        self.counts = {"ok": 0, "error": 0, "dropped": 0, "interrupted": 0}
        self.outstanding = 0
        self.cpu = CpuSampler.for_this_process()
        self.cpu.sample()
        self.cpu_warnings = 0
        self.default_operation = "arrival"
        self.started_at = time.time()
        self.finished = False
        self._over = False
        self.closed_deadline: float | None = None
        self.by_operation: dict[str, dict[str, int]] = {}
        self._ticker = gevent.spawn(self._tick)

    # --- open model ------------------------------------------------------------

    def join(self, operation: str, lane: Hashable) -> None:
        """A user of the pool joins ``lane`` (see :mod:`loadtests.dispatcher`), before its first ``take``."""
        if self.dispatcher is None:
            self.default_operation = operation
            offsets = partition(intended_offsets(self.shape, self.duration, random.Random(self.seed)),
                                self.index, self.count)
            self.dispatcher = Dispatcher(offsets, t0=time.time() + 0.05, max_lateness=self.max_lateness)
        self.dispatcher.join(lane)

    def take(self, operation: str, lane: Hashable) -> Arrival | None:
        assert self.dispatcher is not None, "a user joins its lane before it takes"
        arrival = self.dispatcher.take(time.time(), lane)
        if arrival is None:
            self._check_over()
        else:
            self.outstanding += 1
        return arrival

    def admit(self, arrival: Arrival, operation: str) -> bool:
        assert self.dispatcher is not None
        if self.dispatcher.admit(arrival, time.time()):
            return True
        self.record_dropped(arrival.intended_ts, operation, "not started within max lateness")
        return False

    def release(self) -> None:
        self.outstanding -= 1
        self._check_over()

    def closed_begin(self) -> bool:
        """Closed model: may a user start another operation? After ``duration`` seconds, no."""
        now = time.time()
        if self.closed_limit is None:
            self.outstanding += 1
            return True
        if self.closed_deadline is None:
            self.closed_deadline = now + self.closed_limit
        if now >= self.closed_deadline:
            self._check_over()
            return False
        self.outstanding += 1
        return True

    def _schedule_done(self) -> bool:
        if self.open:
            return self.dispatcher is not None and self.dispatcher.exhausted
        return self.closed_deadline is not None and time.time() >= self.closed_deadline

    def _check_over(self) -> None:
        """When the schedule is over and nothing is outstanding, the run is over."""
        if self._schedule_done() and self.outstanding <= 0 and not self.finished and not self._over:
            self._over = True
            gevent.spawn(self._schedule_over)

    def _schedule_over(self) -> None:
        # Quit only: the parts are written on test_stop, after the users stopped, so that no
        # late event (a delivery) reaches Locust's counts without reaching the samples.
        runner = self.env.runner
        log.info("arrival schedule over (worker %d); stopping", self.index)
        if isinstance(runner, WorkerRunner):
            gevent.sleep(1.1)     # late deliveries land first
            if hasattr(runner, "_send_stats"):   # final stats ahead of "done", so the master's are whole
                runner._send_stats()
            runner.send_message("nines_done", {"index": self.index})
        elif runner is not None:
            gevent.sleep(1.1)     # late deliveries land, and Locust's CSV writer ticks once more
            runner.quit()

    # --- recording -------------------------------------------------------------

    def record(self, operation: str, intended_ts: float, start_ts: float, end_ts: float,
               ok: bool, region: str = "", error: str = "", service_ms: float | None = None) -> None:
        service = (end_ts - start_ts) * 1000.0 if service_ms is None else service_ms
        # closed model (no intended time): latency is the service time, by definition
        latency_ms = service if intended_ts == start_ts else (end_ts - intended_ts) * 1000.0
        outcome = "ok" if ok else "error"
        self.counts[outcome] += 1
        self._count_op(operation, outcome)
        self.book.record(operation, latency_ms, service)
        if self.samples:
            self.samples.write(Sample(intended_ts, start_ts, end_ts, latency_ms, service, outcome,
                                      operation, region, error))

    def _count_op(self, operation: str, outcome: str) -> None:
        op = self.by_operation.get(operation)
        if op is None:
            op = self.by_operation[operation] = {"ok": 0, "error": 0, "dropped": 0}
        op[outcome] += 1

    def record_dropped(self, intended_ts: float, operation: str, why: str) -> None:
        self.counts["dropped"] += 1
        self._count_op(operation, "dropped")
        if self.samples:
            self.samples.write(Sample(intended_ts, None, None, None, None, "dropped", operation, "", why))

    def record_interrupted(self, operation: str, intended_ts: float, start_ts: float) -> None:
        """An operation killed at stop: an error sample, never a Locust request."""
        self.counts["interrupted"] += 1
        self.counts["error"] += 1
        self._count_op(operation, "error")
        if self.samples:
            now = time.time()
            self.samples.write(Sample(intended_ts, start_ts, now, (now - intended_ts) * 1000.0,
                                      (now - start_ts) * 1000.0, "error", operation, "", "interrupted at stop"))

    def write_ledger(self, kind: str, **fields: Any) -> None:
        if self.ledger:
            self.ledger.record(kind, **fields)

    # --- lifecycle -------------------------------------------------------------

    def _tick(self) -> None:
        while True:
            gevent.sleep(1.0)
            self.cpu.sample()
            if self.samples:
                self.samples.flush()
            if self.ledger:
                self.ledger.flush()
            self._write_json(f"progress-{self.tag}.json", self.progress())

    def progress(self) -> dict[str, Any]:
        d = self.dispatcher.stats if self.dispatcher else None
        return {"worker": self.index, "t": time.time(), **self.counts,
                "issued": d.issued if d else None, "late": d.late if d else 0,
                "ledger": self.ledger.count if self.ledger else 0}

    def finish(self) -> None:
        if self.finished:
            return
        self.finished = True
        self._ticker.kill(block=False)
        if self.dispatcher is not None:
            for ts in self.dispatcher.finish(time.time()):
                self.record_dropped(ts, self.default_operation, "still due when the run stopped")
        health = self.cpu.summary()
        d = self.dispatcher.stats if self.dispatcher else None
        record = {
            "worker": self.index, "workers": self.count, "pid": os.getpid(),
            "model": "open" if self.open else "closed", "rate": self.rate,
            "shape": self.shape.describe() if self.shape else None,
            "started_at": self.started_at, "ended_at": time.time(),
            "t0": self.dispatcher.t0 if self.dispatcher else None,
            "counts": self.counts, "by_operation": self.by_operation,
            "dispatch": vars(d) if d else None,
            "health": {**health, "worker": self.index, "cpu_warnings": self.cpu_warnings,
                       "late": d.late if d else 0, "wake_lag_sum": d.wake_lag_sum if d else 0.0,
                       "wake_lag_n": d.wake_lag_n if d else 0,
                       "max_wake_lag_ms": round(1000 * d.max_wake_lag, 3) if d else 0.0,
                       "cpu_samples": self.cpu.samples},
            "histograms": self.book.encode(),
            "ledger": self.ledger.count if self.ledger else 0,
        }
        if self.samples:
            self.samples.close()
        if self.ledger:
            self.ledger.close()
        self._write_json(f"worker-{self.tag}.json", record)

    def _write_json(self, name: str, data: dict[str, Any]) -> None:
        if not self.parts:
            return
        tmp = self.parts / f".{name}.tmp"
        tmp.write_text(json.dumps(data))
        os.replace(tmp, self.parts / name)


_LAB: Any = None


def lab(env: Environment) -> Any:
    """The lab's endpoints (:class:`loadtests.endpoints.LabEndpoints`), read once per process."""
    global _LAB
    if _LAB is None:
        from loadtests.endpoints import default_state_dir, load_endpoints

        flag = getattr(env.parsed_options, "nines_state_dir", "") if env.parsed_options else ""
        _LAB = load_endpoints(default_state_dir(flag or None))
    return _LAB


def generator(env: Environment) -> Generator:
    """This process's generator (made on first use when a user starts before test_start)."""
    global _GEN
    if _GEN is None:
        runner = env.runner
        if isinstance(runner, WorkerRunner):
            count = int(getattr(env.parsed_options, "expect_workers", 1) or 1)
            _GEN = Generator(env, runner.worker_index, count)
        else:
            _GEN = Generator(env, 0, 1)
    return _GEN


@events.test_start.add_listener
def _on_test_start(environment: Environment, **_: Any) -> None:
    if isinstance(environment.runner, MasterRunner):
        _DONE_WORKERS.clear()
        return
    generator(environment)


@events.init.add_listener
def _on_init(environment: Environment, runner: Any = None, **_: Any) -> None:
    if isinstance(runner, MasterRunner):
        def on_done(msg: Any, **__: Any) -> None:
            _DONE_WORKERS.add(int(msg.data["index"]))
            expected = int(getattr(environment.parsed_options, "expect_workers", 1) or 1)
            if len(_DONE_WORKERS) >= expected:
                log.info("every worker finished its arrivals; stopping")
                gevent.spawn_later(0.2, runner.quit)
        runner.register_message("nines_done", on_done)


@events.request.add_listener
def _on_request(request_type: str, name: str, response_time: float, response_length: int,
                exception: Any = None, context: dict | None = None, start_time: float | None = None,
                **_: Any) -> None:
    gen = _GEN
    if gen is None:
        return
    ctx = context or {}
    end = ctx.get("end_ts") or time.time()
    start = ctx.get("start_ts") or start_time or end - response_time / 1000.0
    intended = ctx.get("intended_ts") or start
    gen.record(name, intended, start, end, exception is None, ctx.get("region", ""),
               "" if exception is None else f"{type(exception).__name__}: {exception}",
               service_ms=ctx.get("service_ms", response_time))


@events.cpu_warning.add_listener
def _on_cpu_warning(**_: Any) -> None:
    if _GEN is not None:
        _GEN.cpu_warnings += 1


@events.test_stop.add_listener
def _on_test_stop(environment: Environment, **_: Any) -> None:
    if _GEN is not None:
        _GEN.finish()


@events.quitting.add_listener
def _on_quitting(environment: Environment, **_: Any) -> None:
    if _GEN is not None:
        _GEN.finish()


@atexit.register
def _at_exit() -> None:
    if _GEN is not None:
        _GEN.finish()
