"""The base of every nineslab Locust user: one *operation* per arrival (open) or per loop (closed).

Open model (``--nines-rate R``): the users are a pool of workers pulling intended start
times from the process's dispatcher, each from its *lane* (its kind of user and, when it
has one, its region: :attr:`NinesUser.lane`), so a region that fails fast does not take
the other regions' share of the arrivals; a user waits for its arrival's intended time,
starts the operation, and the operation reports itself through Locust's ``request``
event with ``context={"intended_ts": ...}`` (see :meth:`NinesUser.context_for`), so the
sample's latency counts from the intended start. Closed model: the classic Locust loop
with ``think_time`` between operations; latency counts from the real start.

Subclasses set ``operation`` (the sample name of a dropped arrival) and implement
``perform(intended_ts)``. An exception escaping ``perform`` becomes a failed request
of that operation, so Locust's counts and the sample file stay equal.
"""
from __future__ import annotations

import time
from typing import Any

import gevent
from locust import User, between, task
from locust.exception import InterruptTaskSet, RescheduleTask, StopUser

from loadtests.harness import Generator, generator


def wait_until(ts: float) -> None:
    """Sleep until unix time ``ts``, never waking early.

    gevent's timers count from the event loop's cached "now", which is stale after a slow
    start (imports on a busy machine): refresh it first, and sleep again if woken early.
    """
    loop = gevent.get_hub().loop
    while True:
        delay = ts - time.time()
        if delay <= 0:
            return
        loop.update_now()
        gevent.sleep(delay)


class NinesUser(User):
    abstract = True
    operation = "operation"
    think_time = between(0.5, 1.5)
    _joined = False       # open model: joined its dispatcher lane (before its first take)

    @property
    def gen(self) -> Generator:
        return generator(self.environment)

    def wait_time(self) -> float:   # type: ignore[override]
        return 0.0 if self.gen.open else self.think_time()

    def context_for(self, intended_ts: float | None, **extra: Any) -> dict[str, Any]:
        ctx: dict[str, Any] = dict(extra)
        if intended_ts is not None:
            ctx["intended_ts"] = intended_ts
        return ctx

    def perform(self, intended_ts: float | None) -> None:
        raise NotImplementedError

    @property
    def lane(self) -> tuple[str, str]:
        """The dispatcher lane this user takes arrivals from: its class and its region, if any."""
        return type(self).__name__, str(getattr(self, "region", ""))

    def fire(self, name: str, start_ts: float, exception: BaseException | None = None,
             intended_ts: float | None = None, end_ts: float | None = None, length: int = 0,
             request_type: str = "WS", **extra: Any) -> None:
        """Report one non-HTTP request to Locust (and so to the samples)."""
        end = end_ts if end_ts is not None else time.time()
        self.environment.events.request.fire(
            request_type=request_type, name=name, response_time=(end - start_ts) * 1000.0,
            response_length=length, exception=exception, response=None,
            context=self.context_for(intended_ts, start_ts=start_ts, end_ts=end, **extra))

    def _guarded(self, intended_ts: float | None) -> None:
        start = time.time()
        try:
            self.perform(intended_ts)
        except (StopUser, RescheduleTask, InterruptTaskSet, gevent.GreenletExit):
            raise
        except Exception as exc:  # noqa: BLE001 - an operation's failure is a sample, not a crash
            self.fire(self.operation, start, exc, intended_ts, request_type="OP")

    @task
    def arrival(self) -> None:
        gen = self.gen
        if not gen.open:
            if not gen.closed_begin():       # the run's duration is over: idle until stopped
                gevent.sleep(0.5)
                return
            try:
                self._guarded(None)
            finally:
                gen.release()
            return
        if not self._joined:
            gen.join(self.operation, self.lane)
            self._joined = True
        arrival = gen.take(self.operation, self.lane)
        if arrival is None:          # the schedule is over for this process: idle until stopped
            gevent.sleep(0.5)
            return
        started = completed = False
        try:
            wait_until(arrival.intended_ts)
            if gen.admit(arrival, self.operation):
                started = True
                self._guarded(arrival.intended_ts)
            completed = True
        finally:
            if not completed:          # killed at stop
                if started:
                    gen.record_interrupted(self.operation, arrival.intended_ts, time.time())
                elif arrival.intended_ts <= time.time():
                    gen.record_dropped(arrival.intended_ts, self.operation, "still due when the run stopped")
            gen.release()
