"""The router's view of one chat server: a pure health state machine in virtual time.

States: ``unknown`` (not probed yet) -> ``healthy`` / ``unhealthy``. A healthy (or unknown)
server becomes unhealthy after ``failure_threshold`` failed probes in a row; an unhealthy one
becomes healthy again after ``recovery_threshold`` successes in a row; an unknown one becomes
healthy at its first success. While unhealthy, probes back off (x``backoff_factor`` per failed
probe, up to ``max_interval``), so a dead server costs little; while healthy or recovering
they run every ``interval``. The loop that probes (server.py) only feeds ``observe`` and
sleeps ``next_delay()``: detection time is interval x threshold (+ timeout), testable here
without sockets.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from pydantic import BaseModel, ConfigDict, Field

UNKNOWN, HEALTHY, UNHEALTHY = "unknown", "healthy", "unhealthy"


class HealthPolicy(BaseModel):
    model_config = ConfigDict(extra="ignore")
    check_interval: float = Field(5.0, gt=0)
    failure_threshold: int = Field(3, ge=1)
    check_timeout: float = Field(1.0, gt=0)
    recovery_threshold: int = Field(2, ge=1)
    backoff_factor: float = Field(1.5, ge=1.0)
    max_check_interval: float | None = Field(None, gt=0)   # None: 2 x check_interval

    @property
    def max_interval(self) -> float:
        return self.max_check_interval or 2 * self.check_interval


@dataclass
class ServerHealth:
    name: str
    region: str
    policy: HealthPolicy
    state: str = UNKNOWN
    failures: int = 0           # consecutive
    successes: int = 0          # consecutive
    last_detail: str = ""
    changed_at: float | None = None
    history: list[tuple[float, str]] = field(default_factory=list)

    def observe(self, ok: bool, now: float, detail: str = "") -> str | None:
        """Feed one probe result; the new state when it changed, else None."""
        self.last_detail = detail
        if ok:
            self.failures, self.successes = 0, self.successes + 1
            if self.state == UNKNOWN or (self.state == UNHEALTHY and self.successes >= self.policy.recovery_threshold):
                return self._move(HEALTHY, now)
        else:
            self.successes, self.failures = 0, self.failures + 1
            if self.state != UNHEALTHY and self.failures >= self.policy.failure_threshold:
                return self._move(UNHEALTHY, now)
        return None

    def _move(self, state: str, now: float) -> str:
        self.state, self.changed_at = state, now
        self.history.append((now, state))
        return state

    def next_delay(self) -> float:
        """Seconds until the next probe."""
        p = self.policy
        if self.state == UNHEALTHY and self.successes == 0:
            extra = max(0, self.failures - p.failure_threshold)
            return min(p.max_interval, p.check_interval * p.backoff_factor ** extra)
        return p.check_interval
