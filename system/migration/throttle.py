"""A token bucket that paces the sync job: ``delay(n)`` says how long to wait before
copying ``n`` more rows so that the long-run rate stays under ``rate`` rows a second.

Pure: the clock is injected and the caller does the sleeping.
"""
from __future__ import annotations

from typing import Callable


class Throttle:
    def __init__(self, rate: float | None, clock: Callable[[], float], burst_seconds: float = 0.2) -> None:
        self.rate = rate if rate and rate > 0 else None
        self.clock = clock
        self.capacity = (self.rate or 0) * burst_seconds
        self._tokens = self.capacity
        self._last = clock()

    def delay(self, rows: int) -> float:
        """Take ``rows`` tokens; the seconds to wait before going on (0 when unthrottled)."""
        if self.rate is None:
            return 0.0
        now = self.clock()
        self._tokens = min(self.capacity, self._tokens + (now - self._last) * self.rate)
        self._last = now
        self._tokens -= rows
        return 0.0 if self._tokens >= 0 else -self._tokens / self.rate
