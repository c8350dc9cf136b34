"""A circuit breaker: a pure state machine (closed -> open -> half_open -> closed) with an
injected clock, plus a small async ``call`` wrapper.

Closed: calls pass; ``failure_threshold`` consecutive failures open it. Open: calls are
refused at once (``BreakerOpen``) for ``reset_timeout`` seconds, then one trial call is let
through (half_open); its success closes the breaker, its failure opens it again.
Every change calls ``on_change(name, old, new, detail)`` so the service can log an event
and set a metric (the chaos engine times detection from those).
"""
from __future__ import annotations

import time
from typing import Awaitable, Callable, TypeVar

from lab.errors import DependencyError

CLOSED, OPEN, HALF_OPEN = "closed", "open", "half_open"
T = TypeVar("T")


class BreakerOpen(DependencyError):
    """A call was refused because the dependency's breaker is open."""


class CircuitBreaker:
    def __init__(self, name: str, *, failure_threshold: int = 3, reset_timeout: float = 2.0,
                 clock: Callable[[], float] = time.monotonic,
                 on_change: Callable[[str, str, str, str], None] | None = None) -> None:
        self.name = name
        self.failure_threshold = failure_threshold
        self.reset_timeout = reset_timeout
        self.clock = clock
        self.on_change = on_change
        self.state = CLOSED
        self.failures = 0
        self.opened_at = 0.0
        self._trial_running = False

    def _set(self, new: str, detail: str) -> None:
        old, self.state = self.state, new
        if old != new and self.on_change:
            self.on_change(self.name, old, new, detail)

    def allow(self) -> bool:
        """May a call go ahead now? In half_open only one trial at a time."""
        if self.state == CLOSED:
            return True
        if self.state == OPEN and self.clock() - self.opened_at >= self.reset_timeout:
            self._set(HALF_OPEN, f"trial after {self.reset_timeout:g} s open")
        if self.state == HALF_OPEN and not self._trial_running:
            self._trial_running = True
            return True
        return False

    def success(self) -> None:
        self.failures = 0
        self._trial_running = False
        if self.state != CLOSED:
            self._set(CLOSED, "call succeeded")

    def failure(self, detail: str = "") -> None:
        self._trial_running = False
        self.failures += 1
        if self.state == HALF_OPEN or (self.state == CLOSED and self.failures >= self.failure_threshold):
            self.opened_at = self.clock()
            self._set(OPEN, detail or f"{self.failures} consecutive failures")

    async def call(self, fn: Callable[[], Awaitable[T]],
                   failures: tuple[type[BaseException], ...] = (Exception,)) -> T:
        """Run ``fn`` through the breaker; ``BreakerOpen`` without calling it when open."""
        if not self.allow():
            raise BreakerOpen(f"{self.name} is unavailable (circuit open)")
        try:
            result = await fn()
        except failures as exc:
            self.failure(f"{type(exc).__name__}: {exc}"[:200])
            raise
        except BaseException:
            self._trial_running = False   # cancelled: neither success nor failure
            raise
        self.success()
        return result
