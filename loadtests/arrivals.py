"""Arrival schedules of the open model: when each request *should* start.

A schedule is a rate shape (arrivals per second as a function of the offset from the
start of the run) turned into a sequence of intended start offsets, either evenly
spaced (``constant`` pacing, like wrk2) or as a Poisson process (by thinning, so a
time-varying rate stays exact). Everything here is pure: the random generator is
injected, nothing reads a clock, so a seed gives the same schedule every time.

Shapes (``--shape NAME[:key=value,...]``, the base rate is ``--rate``):

- ``constant``             evenly spaced at the base rate
- ``poisson``              Poisson arrivals at the base rate
- ``step:every=S,by=R``    base rate, raised by R every S seconds
- ``spike:at=S,for=S,factor=F``  base rate, F times the base between at and at+for
- ``diurnal:period=S,amplitude=A``  base * (1 - A cos(2 pi t / period)): a day compressed to S seconds

Any shape takes ``poisson=1`` to draw Poisson arrivals instead of even spacing.

Scale-out: worker ``i`` of ``n`` takes every n-th arrival of the one global schedule
(:func:`partition`), so the merged load has exactly the global shape.
"""
from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from typing import Iterator

from lab.errors import UsageError

SHAPES = ("constant", "poisson", "step", "spike", "diurnal")


@dataclass(frozen=True)
class RateShape:
    """Arrivals per second over the offset ``t`` (seconds) since the start of a run."""

    name: str
    base: float
    params: dict[str, float] = field(default_factory=dict)
    poisson: bool = False

    def rate(self, t: float) -> float:
        p, base = self.params, self.base
        if self.name == "step":
            return base + p["by"] * math.floor(t / p["every"])
        if self.name == "spike":
            return base * p["factor"] if p["at"] <= t < p["at"] + p["for"] else base
        if self.name == "diurnal":
            return base * (1.0 - p["amplitude"] * math.cos(2.0 * math.pi * t / p["period"]))
        return base

    def peak(self, duration: float) -> float:
        """The highest rate over ``[0, duration)`` (bounds the Poisson thinning)."""
        p, base = self.params, self.base
        if self.name == "step":
            return max(base, self.rate(max(0.0, duration - 1e-9)))
        if self.name == "spike":
            return base * max(1.0, p["factor"])
        if self.name == "diurnal":
            return base * (1.0 + abs(p["amplitude"]))
        return base

    def expected_count(self, duration: float, step: float = 0.01) -> float:
        """The integral of the rate over the run: how many arrivals are intended."""
        n = max(1, int(duration / step))
        h = duration / n
        return sum(self.rate((i + 0.5) * h) for i in range(n)) * h

    def describe(self) -> str:
        extra = ",".join(f"{k}={v:g}" for k, v in sorted(self.params.items()))
        kind = "poisson" if self.poisson else "even"
        return f"{self.name}({extra}) at {self.base:g}/s, {kind} arrivals"


_DEFAULTS: dict[str, dict[str, float]] = {
    "constant": {},
    "poisson": {},
    "step": {"every": 10.0, "by": None},          # type: ignore[dict-item]  # by defaults to the base rate
    "spike": {"at": None, "for": None, "factor": 5.0},  # type: ignore[dict-item]  # a third in, a sixth long
    "diurnal": {"period": None, "amplitude": 0.5},      # type: ignore[dict-item]  # period defaults to the run
}


def parse_shape(spec: str, base_rate: float, duration: float) -> RateShape:
    """Parse ``NAME[:k=v,...]`` into a :class:`RateShape`; bad input raises :class:`UsageError`."""
    if base_rate <= 0 or not math.isfinite(base_rate):
        raise UsageError(f"the arrival rate must be a positive number of requests per second, not {base_rate!r}")
    name, _, rest = spec.strip().partition(":")
    name = name.strip().lower()
    if name not in _DEFAULTS:
        raise UsageError(f"unknown arrival shape {name!r}; choose one of {', '.join(SHAPES)}")
    params: dict[str, float] = dict(_DEFAULTS[name])
    poisson = name == "poisson"
    for item in filter(None, (s.strip() for s in rest.split(","))):
        key, eq, value = item.partition("=")
        key = key.strip()
        try:
            number = float(value.strip().rstrip("xs"))
        except ValueError:
            number = math.nan
        if not eq or not math.isfinite(number):
            raise UsageError(f"shape option {item!r} of {spec!r} must read key=number")
        if key == "poisson":
            poisson = bool(number)
        elif key in params:
            params[key] = number
        else:
            allowed = ", ".join(sorted(params) + ["poisson"])
            raise UsageError(f"shape {name!r} has no option {key!r}; it takes {allowed}")
    fill = {"by": base_rate, "at": duration / 3.0, "for": duration / 6.0, "period": duration}
    for key, value in params.items():
        if value is None:
            params[key] = fill[key]
    for key in ("every", "period"):
        if key in params and params[key] <= 0:
            raise UsageError(f"shape option {key} of {spec!r} must be positive")
    if name == "diurnal" and not 0 <= params["amplitude"] <= 1:
        raise UsageError(f"diurnal amplitude must lie between 0 and 1, not {params['amplitude']:g}")
    return RateShape(name=name, base=base_rate, params=params, poisson=poisson)


def intended_offsets(shape: RateShape, duration: float, rng: random.Random) -> Iterator[float]:
    """Yield the intended start offsets (seconds since the run start) in ``[0, duration)``."""
    if shape.poisson:
        peak = shape.peak(duration)
        if peak <= 0:
            return
        t = 0.0
        while True:
            t += rng.expovariate(peak)
            if t >= duration:
                return
            if rng.random() * peak <= shape.rate(t):   # thinning keeps a time-varying rate exact
                yield t
    elif shape.name == "constant":
        n = 0
        while n / shape.base < duration:   # by index: no float drift over a long run
            yield n / shape.base
            n += 1
    else:
        # even spacing of a time-varying rate: arrival k falls where the cumulative count
        # reaches k, walked on an integer 1 ms grid so nothing drifts over a long run
        dt = 0.001
        k, count = 0, 0.0
        for i in range(int(round(duration / dt))):
            t = i * dt
            rate = shape.rate(t + dt / 2)
            after = count + rate * dt
            while k <= after + 1e-9:
                x = t + ((k - count) / rate if rate > 0 else 0.0)
                if x >= duration - 1e-9:
                    return
                yield round(max(t, x), 9)
                k += 1
            count = after


def partition(offsets: Iterator[float], index: int, count: int) -> Iterator[float]:
    """Worker ``index`` of ``count`` takes every ``count``-th arrival of the global schedule."""
    if not 0 <= index < count:
        raise UsageError(f"worker index {index} is outside 0..{count - 1}")
    for i, t in enumerate(offsets):
        if i % count == index:
            yield t
