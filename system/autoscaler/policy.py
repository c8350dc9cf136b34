"""When to scale: a pure decision per region, in the manner of Kubernetes' HPA.

The wanted replica count is ``ceil(load / target_per_replica)`` clamped to ``[min, max]``,
where ``load`` is the region's total of the metric (connections, or messages a second).
Hysteresis keeps it from flapping: nothing moves while the load a replica carries is within
``tolerance`` of the target; a scale-out waits ``scale_out_cooldown`` after the last one; a
scale-in needs the load to have stayed low for ``scale_in_cooldown`` (and as long since the
last scale-out), removes one replica at a time, and only when ``ceil`` says the rest can carry
the load — so the replica count after it is still within the target. No clock, no I/O: the
caller passes ``now``::

    policy = RegionPolicy(settings)
    d = policy.decide(now, current=2, load=40.0)     # Decision(action="out", desired=3, ...)
    if d.action != "hold": act(d); policy.acted(d, now)
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

OUT, IN, HOLD = "out", "in", "hold"


class AutoscaleSettings(BaseModel):
    """The ``autoscale`` block of a service in lab/topology.yaml (``_seconds`` names accepted)."""

    model_config = ConfigDict(extra="ignore")
    template: str = "chat-{region}-{n}"
    min: int = Field(1, ge=1)
    max: int = Field(3, ge=1)
    metric: Literal["connections", "messages_per_second"] = "connections"
    target_per_replica: float = Field(100.0, gt=0)
    tolerance: float = Field(0.1, ge=0, lt=1)
    scale_out_cooldown: float = Field(10.0, ge=0)
    scale_in_cooldown: float = Field(60.0, ge=0)
    evaluation_interval: float = Field(2.0, gt=0)
    drain_timeout: float = Field(30.0, gt=0)

    @model_validator(mode="after")
    def _bounds(self) -> "AutoscaleSettings":
        if self.min > self.max:
            raise ValueError(f"min ({self.min}) is above max ({self.max})")
        return self


@dataclass(frozen=True)
class Decision:
    action: Literal["out", "in", "hold"]
    current: int
    desired: int
    reason: str
    load_per_replica: float | None = None


@dataclass
class RegionPolicy:
    settings: AutoscaleSettings
    last_out: float = -math.inf
    low_since: float | None = None

    def decide(self, now: float, current: int, load: float | None) -> Decision:
        s = self.settings
        if current < s.min:
            return Decision(OUT, current, s.min, f"{current} replicas, below the minimum {s.min}")
        if current > s.max:
            return Decision(IN, current, current - 1, f"{current} replicas, above the maximum {s.max}")
        if load is None:
            self.low_since = None
            return Decision(HOLD, current, current, "no replica answered its metrics")
        per = load / current
        ratio = per / s.target_per_replica
        wanted = min(s.max, max(s.min, math.ceil(load / s.target_per_replica - 1e-9)))
        about = f"{per:.1f} {s.metric.replace('_', ' ')} a replica, target {s.target_per_replica:g}"
        if ratio > 1 + s.tolerance and wanted > current:
            self.low_since = None
            if now - self.last_out < s.scale_out_cooldown:
                return Decision(HOLD, current, current, f"{about}; scale-out cooldown", per)
            return Decision(OUT, current, wanted, about, per)
        if ratio < 1 - s.tolerance and wanted < current:
            self.low_since = now if self.low_since is None else self.low_since
            if now - self.low_since < s.scale_in_cooldown or now - self.last_out < s.scale_in_cooldown:
                return Decision(HOLD, current, current, f"{about}; scale-in cooldown", per)
            return Decision(IN, current, current - 1, about, per)
        self.low_since = None
        return Decision(HOLD, current, current, f"{about}; within tolerance", per)

    def acted(self, decision: Decision, now: float) -> None:
        """Start the cooldowns after a scaling action."""
        if decision.action == OUT:
            self.last_out = now
        self.low_since = None
