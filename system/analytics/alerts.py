"""The error-rate alert (pure): fires when failed / (sent + failed) over the window passes the
threshold (5 % by default) with at least ``min_events`` in the window, and resolves when the
rate falls back to the threshold or below. ``evaluate`` returns the transition, if any."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass
class AlertState:
    name: str
    firing: bool = False
    since: float | None = None
    rate: float = 0.0


class ErrorRateAlert:
    def __init__(self, threshold: float = 0.05, min_events: int = 20, name: str = "error_rate") -> None:
        self.threshold, self.min_events = threshold, min_events
        self.state = AlertState(name)

    def evaluate(self, sent: float, failed: float, now: float) -> str | None:
        """Update with the window's counts; ``"firing"``/``"resolved"`` on a change, else None."""
        total = sent + failed
        rate = failed / total if total else 0.0
        self.state.rate = rate
        if not self.state.firing and total >= self.min_events and rate > self.threshold:
            self.state.firing, self.state.since = True, now
            return "firing"
        if self.state.firing and rate <= self.threshold:
            self.state.firing, self.state.since = False, now
            return "resolved"
        return None

    def as_dict(self) -> dict:
        return {"name": self.state.name, "firing": self.state.firing, "since": self.state.since,
                "rate": round(self.state.rate, 6), "threshold": self.threshold}


class LagTracker:
    """Consumer lag state (pure): ``lagging`` when the oldest unprocessed work is older than
    ``alarm_seconds``, ``caught_up`` once nothing is pending."""

    def __init__(self, alarm_seconds: float = 5.0) -> None:
        self.alarm_seconds = alarm_seconds
        self.lagging = False

    def evaluate(self, pending: int, lag_seconds: float) -> str | None:
        if not self.lagging and pending > 0 and lag_seconds > self.alarm_seconds:
            self.lagging = True
            return "lagging"
        if self.lagging and pending == 0:
            self.lagging = False
            return "caught_up"
        return None
