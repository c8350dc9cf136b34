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

Arrivals are dealt to *lanes* before a worker takes them: each worker joins one lane
(its kind of user and its region, see ``NinesUser.lane``), and arrival ``k`` goes to the
lane of the ``k``-th member in turn, so each lane gets its members' share of the schedule
whatever the system does to the other lanes. Within a lane any free worker takes the next
one. Without lanes, a region whose requests fail at once would get its workers back at
once and take nearly every arrival while the healthy regions' workers wait for slow
answers: availability would be measured on the failing region's users alone. An arrival
dealt to a lane whose workers are all busy waits for one of them: that delay is queueing,
the system's.

Pure: the caller passes ``now``; nothing here sleeps or reads a clock.
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Hashable, Iterator


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
    _exhausted: bool = False       # the schedule's offsets are all dealt
    _members: list[Hashable] = field(default_factory=list)          # a lane per joined worker
    _queued: dict[Hashable, deque] = field(default_factory=dict)    # dealt, not yet taken

    def join(self, lane: Hashable) -> None:
        """One more worker in ``lane``: the lane's share of the schedule grows by one member's."""
        self._members.append(lane)
        self._queued.setdefault(lane, deque())

    def take(self, now: float, lane: Hashable = None) -> Arrival | None:
        """The lane's next arrival, or ``None`` when the schedule is over for it."""
        queued = self._queued.get(lane)
        if queued:
            index, intended = queued.popleft()
            return self._issue(index, intended, now)
        while not self._exhausted:
            offset = next(self.offsets, None)
            if offset is None:
                self._exhausted = True
                break
            index = self._index
            self._index += 1
            owner = self._members[index % len(self._members)] if self._members else lane
            if owner == lane:
                return self._issue(index, self.t0 + offset, now)
            self._queued[owner].append((index, self.t0 + offset))
        return None

    def _issue(self, index: int, intended: float, now: float) -> Arrival:
        self.stats.issued += 1
        return Arrival(index, intended, now)

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
        due = sorted(t for queued in self._queued.values() for _, t in queued if t <= now)
        for queued in self._queued.values():
            queued.clear()
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
        """Every arrival was taken (or dropped at stop)."""
        return self._exhausted and not any(self._queued.values())
