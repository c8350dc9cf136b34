"""How numbers read in every output: seconds, minutes, percentages, "never" and "—"."""
from __future__ import annotations


def seconds(value: float | None, never: bool = False) -> str:
    if value is None:
        return "never" if never else "—"
    text = f"{value:.1f}" if value < 100 else f"{value:,.0f}"
    return text + (" (+never)" if never else "")


def minutes(value: float | None) -> str:
    return "—" if value is None else (f"{value:.2f}" if value < 100 else f"{value:,.0f}")


def percent(value: float | None, digits: int = 2) -> str:
    return "—" if value is None else f"{100 * value:.{digits}f}%"


def score(value: float | None) -> str:
    return "—" if value is None else f"{value:.1f}"


def interval(low: float | None, high: float | None) -> str:
    if low is None or high is None:
        return ""
    return f"{100 * low:.2f}–{100 * high:.2f}%"
