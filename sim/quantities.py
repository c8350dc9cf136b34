"""Durations and rates as written in a model file, converted to the model's unit: hours.

A duration is ``"5s"``, ``"10m"``, ``"2h"``, ``"30d"``, ``"1w"`` or ``"1y"`` (one year is
8,760 h), or a bare number, which means **hours**.  A rate is ``"4/yr"``, ``"1/month"``,
``"2/week"``, ``"0.5/day"``, ``"3/h"`` or a bare number, which means **events per year**;
``"mtbf 1000h"`` is also accepted (rate = 1/MTBF).  Everything inside the simulator is in
hours and events per hour; only results are reported in minutes.
"""
from __future__ import annotations

import re

HOURS_PER_YEAR = 8760.0
MINUTES_PER_YEAR = HOURS_PER_YEAR * 60.0
HOURS_PER_MONTH = HOURS_PER_YEAR / 12.0

_DURATION_UNITS = {
    "ms": 1.0 / 3_600_000.0, "s": 1.0 / 3600.0, "sec": 1.0 / 3600.0, "m": 1.0 / 60.0,
    "min": 1.0 / 60.0, "h": 1.0, "d": 24.0, "w": 168.0, "y": HOURS_PER_YEAR, "yr": HOURS_PER_YEAR,
}
_RATE_UNITS = {  # events per <unit> -> events per hour
    "h": 1.0, "hour": 1.0, "d": 1 / 24.0, "day": 1 / 24.0, "w": 1 / 168.0, "week": 1 / 168.0,
    "month": 12.0 / HOURS_PER_YEAR, "mo": 12.0 / HOURS_PER_YEAR,
    "y": 1.0 / HOURS_PER_YEAR, "yr": 1.0 / HOURS_PER_YEAR, "year": 1.0 / HOURS_PER_YEAR,
}
_DURATION_RE = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*([a-z]*)\s*$")
_RATE_RE = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*/\s*([a-z]+)\s*$")


class QuantityError(ValueError):
    """A duration or a rate could not be read; the message says what is accepted."""


def parse_duration(value: object) -> float:
    """Return ``value`` in hours: ``"5s"`` -> 0.00139, ``"2h"`` -> 2.0, ``3`` -> 3.0 (hours)."""
    if isinstance(value, bool):
        raise QuantityError(f"{value!r} is not a duration; write e.g. 5s, 10m, 2h, 30d or a number of hours")
    if isinstance(value, (int, float)):
        if value < 0:
            raise QuantityError(f"duration {value} is negative")
        return float(value)
    match = _DURATION_RE.match(str(value).lower())
    if match is None or (match.group(2) and match.group(2) not in _DURATION_UNITS):
        raise QuantityError(
            f"{value!r} is not a duration; write e.g. 5s, 10m, 2h, 30d or a number of hours")
    number, unit = float(match.group(1)), match.group(2) or "h"
    return number * _DURATION_UNITS[unit]


def parse_rate(value: object) -> float:
    """Return ``value`` in events per hour: ``"4/yr"``, ``"2/week"``, ``"mtbf 1000h"``, ``4`` (per year)."""
    if isinstance(value, bool):
        raise QuantityError(f"{value!r} is not a rate; write e.g. 4/yr, 2/week or a number per year")
    if isinstance(value, (int, float)):
        if value < 0:
            raise QuantityError(f"rate {value} is negative")
        return float(value) / HOURS_PER_YEAR
    text = str(value).strip().lower()
    if text.startswith("mtbf"):
        mtbf = parse_duration(text[4:].strip(" :="))
        if mtbf <= 0:
            raise QuantityError(f"{value!r}: the MTBF must be positive")
        return 1.0 / mtbf
    match = _RATE_RE.match(text)
    if match is None or match.group(2) not in _RATE_UNITS:
        try:
            return parse_rate(float(text))
        except ValueError:
            raise QuantityError(
                f"{value!r} is not a rate; write e.g. 4/yr, 1/month, 2/week, 0.5/day, 'mtbf 1000h' "
                "or a number of events per year") from None
    return float(match.group(1)) * _RATE_UNITS[match.group(2)]


def format_duration(hours: float) -> str:
    """A short human form of a duration in hours: 0.0035 -> '12.6s'."""
    seconds = hours * 3600.0
    if seconds < 120:
        return f"{seconds:.3g}s"
    if seconds < 7200:
        return f"{seconds / 60:.3g}m"
    if hours < 72:
        return f"{hours:.3g}h"
    return f"{hours / 24:.3g}d"
