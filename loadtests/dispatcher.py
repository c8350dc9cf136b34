"""The open-model dispatcher: hands intended start times to a pool of workers.

Locust users are the pool (``--concurrency`` of them); each loops ``take`` → wait until
the intended time → ``admit`` → do the operation. The dispatcher never skips an arrival
silently: an arrival that could not start within ``max_lateness`` of its intended time is
*dropped* (counted and written as a sample), and one still due when the run stops is
dropped too (:meth:`finish`).

Lateness has two causes, told apart here because only one of them is the system's fault:

- *queueing*: every worker was busy, so the arrival was taken after its intended time.
  That delay is the system's (a slow answer held a worker) and is part of the corrected
  latency, exactly as a user would have seen it;
- *wake lag*: a worker was idle, waiting for the intended time, yet woke up late. That is
  the generator's fault (CPU starved, event loop blocked): it is counted as a *late
  arrival* and makes the run invalid when it grows (see :mod:`loadtests.health`).

Pure: the caller passes ``now``; nothing here sleeps or reads a clock.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterator


@dataclass(frozen=True, slots=True)
class Arrival:
    index: int
    intended_ts: float
    taken_ts: float

    @property
    def waited(self) -> bool:
        """True when a worker took it ahead of time (it was idle), so lateness is wake lag."""
        return self.taken_ts < self.intended_ts


@dataclass
class DispatchStats:
    issued: int = 0            # arrivals handed to a worker
    started: int = 0           # admitted and started
    dropped: int = 0           # could not start within max_lateness, or still due at stop
    late: int = 0              # wake lag above the late threshold (the generator's fault)
    max_wake_lag: float = 0.0  # seconds
    max_queue_delay: float = 0.0
    wake_lag_sum: float = 0.0
    wake_lag_n: int = 0


@dataclass
class Dispatcher:
    """Turns intended offsets into arrivals for a pool of workers, counting what it drops."""

    offsets: Iterator[float]
    t0: float                       # unix time of offset 0
    max_lateness: float = 5.0       # seconds; beyond that an arrival is dropped
    late_threshold: float = 0.020   # seconds of wake lag that count as a late arrival
    stats: DispatchStats = field(default_factory=DispatchStats)
    _index: int = 0
    _exhausted: bool = False

    def take(self, now: float) -> Arrival | None:
        """The next arrival, or ``None`` when the schedule is over."""
        if self._exhausted:
            return None
        offset = next(self.offsets, None)
        if offset is None:
            self._exhausted = True
            return None
        arrival = Arrival(self._index, self.t0 + offset, now)
        self._index += 1
        self.stats.issued += 1
        return arrival

    def admit(self, arrival: Arrival, now: float) -> bool:
        """Whether the arrival may start at ``now``; ``False`` means it was dropped."""
        lateness = max(0.0, now - arrival.intended_ts)
        if arrival.waited:
            s = self.stats
            s.wake_lag_sum += lateness
            s.wake_lag_n += 1
            s.max_wake_lag = max(s.max_wake_lag, lateness)
            if lateness > self.late_threshold:
                s.late += 1
        else:
            self.stats.max_queue_delay = max(self.stats.max_queue_delay, lateness)
        if lateness > self.max_lateness:
            self.stats.dropped += 1
            return False
        self.stats.started += 1
        return True

    def finish(self, now: float) -> list[float]:
        """Stop: every arrival due by ``now`` and never taken is dropped; returns their intended times."""
        due: list[float] = []
        if not self._exhausted:
            for offset in self.offsets:
                if self.t0 + offset > now:
                    break
                due.append(self.t0 + offset)
            self._exhausted = True
        self.stats.issued += len(due)
        self.stats.dropped += len(due)
        return due

    @property
    def exhausted(self) -> bool:
        return self._exhausted
