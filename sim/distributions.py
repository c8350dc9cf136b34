"""Duration distributions of the model: how long an outage, a detection or a failover lasts.

A distribution is written in a model file as a plain duration (``"30s"``: fixed) or a
mapping with ``dist`` and its parameters, all durations (see :mod:`sim.quantities`)::

    {dist: exponential, mean: 1h}
    {dist: weibull, shape: 0.75, scale: 2h}        # or shape + mean
    {dist: lognormal, median: 2h, p95: 20h}        # or median + sigma, or mean + sigma
    {dist: empirical, samples: [12s, 14s, 11s]}    # resampled with replacement (bootstrap)
    {dist: uniform, low: 10s, high: 15s}
    {dist: fixed, value: 5s}

Every distribution samples **hours** from an injected ``numpy.random.Generator`` and
can be scaled (``scaled(2.0)`` doubles every draw), which sensitivity analysis uses:
scaling keeps common random numbers aligned because each draw is a monotone transform
of the same underlying variate.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np
from sim.quantities import QuantityError, parse_duration

Z95 = 1.6448536269514722  # standard normal 95th percentile


@dataclasses.dataclass(frozen=True)
class Distribution:
    """Base: a non-negative duration in hours."""

    def sample(self, rng: np.random.Generator, size: int) -> np.ndarray:
        raise NotImplementedError

    @property
    def mean(self) -> float:
        raise NotImplementedError

    def scaled(self, factor: float) -> "Distribution":
        raise NotImplementedError

    def describe(self) -> dict[str, Any]:
        raise NotImplementedError


@dataclasses.dataclass(frozen=True)
class Fixed(Distribution):
    value: float

    def sample(self, rng: np.random.Generator, size: int) -> np.ndarray:
        return np.full(size, self.value)

    @property
    def mean(self) -> float:
        return self.value

    def scaled(self, factor: float) -> "Fixed":
        return Fixed(self.value * factor)

    def describe(self) -> dict[str, Any]:
        return {"dist": "fixed", "value_hours": self.value}


@dataclasses.dataclass(frozen=True)
class Exponential(Distribution):
    mean_hours: float

    def sample(self, rng: np.random.Generator, size: int) -> np.ndarray:
        return rng.exponential(self.mean_hours, size)

    @property
    def mean(self) -> float:
        return self.mean_hours

    def scaled(self, factor: float) -> "Exponential":
        return Exponential(self.mean_hours * factor)

    def describe(self) -> dict[str, Any]:
        return {"dist": "exponential", "mean_hours": self.mean_hours}


@dataclasses.dataclass(frozen=True)
class Weibull(Distribution):
    shape: float
    scale: float

    def sample(self, rng: np.random.Generator, size: int) -> np.ndarray:
        return self.scale * rng.weibull(self.shape, size)

    @property
    def mean(self) -> float:
        return self.scale * math.gamma(1.0 + 1.0 / self.shape)

    def scaled(self, factor: float) -> "Weibull":
        return Weibull(self.shape, self.scale * factor)

    def describe(self) -> dict[str, Any]:
        return {"dist": "weibull", "shape": self.shape, "scale_hours": self.scale}


@dataclasses.dataclass(frozen=True)
class LogNormal(Distribution):
    mu: float      # of log(hours)
    sigma: float

    def sample(self, rng: np.random.Generator, size: int) -> np.ndarray:
        if self.mu + 12.0 * self.sigma < 80.0:
            # single precision (relative error 1e-7) draws and exponentiates in half the time
            z = rng.standard_normal(size, dtype=np.float32)
            return np.exp(z * np.float32(self.sigma) + np.float32(self.mu)).astype(np.float64)
        return rng.lognormal(self.mu, self.sigma, size)

    @property
    def mean(self) -> float:
        return math.exp(self.mu + self.sigma ** 2 / 2.0)

    def scaled(self, factor: float) -> "LogNormal":
        return LogNormal(self.mu + math.log(factor), self.sigma)

    def describe(self) -> dict[str, Any]:
        return {"dist": "lognormal", "median_hours": math.exp(self.mu), "sigma": self.sigma}


@dataclasses.dataclass(frozen=True)
class Uniform(Distribution):
    low: float
    high: float

    def sample(self, rng: np.random.Generator, size: int) -> np.ndarray:
        return rng.uniform(self.low, self.high, size)

    @property
    def mean(self) -> float:
        return (self.low + self.high) / 2.0

    def scaled(self, factor: float) -> "Uniform":
        return Uniform(self.low * factor, self.high * factor)

    def describe(self) -> dict[str, Any]:
        return {"dist": "uniform", "low_hours": self.low, "high_hours": self.high}


@dataclasses.dataclass(frozen=True)
class Empirical(Distribution):
    """Resampling of measured values (hours) with replacement: the bootstrap of calibration."""

    values: tuple[float, ...]

    def sample(self, rng: np.random.Generator, size: int) -> np.ndarray:
        return np.asarray(self.values)[rng.integers(0, len(self.values), size)]

    @property
    def mean(self) -> float:
        return float(np.mean(self.values))

    def scaled(self, factor: float) -> "Empirical":
        return Empirical(tuple(v * factor for v in self.values))

    def describe(self) -> dict[str, Any]:
        return {"dist": "empirical", "n": len(self.values), "mean_hours": self.mean}


@dataclasses.dataclass(frozen=True)
class HealthCheckDetection(Distribution):
    """Detection by periodic health checks, drawn in closed form (never probe by probe).

    The failure falls uniformly within a probe period, the first failing probe comes after
    ``U * interval``, each failing probe takes ``timeout`` to give up, and ``threshold``
    consecutive failures mark the target unhealthy, so
    ``T = (threshold - 1) * interval + timeout + U * interval``, uniform on
    ``[(k-1)I + tau, kI + tau]`` with mean ``(k - 1/2)I + tau`` (reference V6).
    """

    interval: float
    threshold: int
    timeout: float

    def sample(self, rng: np.random.Generator, size: int) -> np.ndarray:
        base = (self.threshold - 1) * self.interval + self.timeout
        return base + self.interval * rng.random(size)

    @property
    def mean(self) -> float:
        return (self.threshold - 0.5) * self.interval + self.timeout

    def scaled(self, factor: float) -> "HealthCheckDetection":
        return HealthCheckDetection(self.interval * factor, self.threshold, self.timeout * factor)

    def describe(self) -> dict[str, Any]:
        return {"dist": "health_check", "interval_hours": self.interval,
                "threshold": self.threshold, "timeout_hours": self.timeout}


def _positive(spec: dict, key: str) -> float:
    if key not in spec:
        raise QuantityError(f"missing '{key}'")
    value = parse_duration(spec[key])
    if value <= 0:
        raise QuantityError(f"'{key}' must be positive, got {spec[key]!r}")
    return value


def parse_distribution(spec: Any) -> Distribution:
    """Build a distribution from its model-file form; raise QuantityError with the reason."""
    if isinstance(spec, Distribution):
        return spec
    if not isinstance(spec, dict):
        return Fixed(parse_duration(spec))
    kind = str(spec.get("dist", "")).lower()
    extra = set(spec) - {"dist", "mean", "scale", "shape", "median", "p95", "sigma", "samples",
                         "low", "high", "value", "source", "note"}
    if extra:
        raise QuantityError(f"unknown distribution field(s) {sorted(extra)}")
    if kind == "fixed":
        return Fixed(parse_duration(spec.get("value", 0)))
    if kind == "exponential":
        return Exponential(_positive(spec, "mean"))
    if kind == "weibull":
        shape = float(spec.get("shape", 0))
        if shape <= 0:
            raise QuantityError("weibull needs a positive 'shape'")
        if "scale" in spec:
            return Weibull(shape, _positive(spec, "scale"))
        return Weibull(shape, _positive(spec, "mean") / math.gamma(1.0 + 1.0 / shape))
    if kind == "lognormal":
        if "median" in spec:
            mu = math.log(_positive(spec, "median"))
            if "p95" in spec:
                p95 = _positive(spec, "p95")
                if p95 <= math.exp(mu):
                    raise QuantityError("lognormal 'p95' must exceed 'median'")
                sigma = (math.log(p95) - mu) / Z95
            else:
                sigma = float(spec.get("sigma", 1.0))
            return LogNormal(mu, sigma)
        sigma = float(spec.get("sigma", 1.0))
        return LogNormal(math.log(_positive(spec, "mean")) - sigma ** 2 / 2.0, sigma)
    if kind == "uniform":
        low, high = parse_duration(spec.get("low", 0)), _positive(spec, "high")
        if high < low:
            raise QuantityError("uniform 'high' is below 'low'")
        return Uniform(low, high)
    if kind == "empirical":
        samples = spec.get("samples") or []
        if not samples:
            raise QuantityError("empirical needs a non-empty 'samples' list")
        return Empirical(tuple(parse_duration(s) for s in samples))
    raise QuantityError(
        f"unknown distribution {kind or spec!r}; use fixed, exponential, weibull, lognormal, "
        "uniform or empirical")


def lognormal_fit(values_hours: np.ndarray) -> LogNormal:
    """Maximum-likelihood lognormal of positive measurements (hours)."""
    logs = np.log(np.maximum(np.asarray(values_hours, dtype=float), 1e-9))
    sigma = float(logs.std(ddof=1)) if logs.size > 1 else 0.5
    return LogNormal(float(logs.mean()), max(sigma, 1e-3))

