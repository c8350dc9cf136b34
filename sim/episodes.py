"""Episodes: one failure's user-visible impact as two phases, and their bookkeeping.

An episode starts at ``start`` (hours into the year) and has a first phase (undetected,
or traffic lost until the router fails over) of ``p1`` hours and a second phase (detected:
degraded share, or failed over at the remaining regions' capacity) of ``p2`` hours, each
with the row of a bad-by-hour table.  The fast engine sums episodes; both engines report
them per year, per month and per failure mode through :class:`YearTotals`.
"""
from __future__ import annotations

import dataclasses

import numpy as np

from sim.quantities import HOURS_PER_MONTH


@dataclasses.dataclass
class ChunkTotals:
    """What one chunk of simulated years contributes to the result."""

    years: int
    downtime: np.ndarray              # (years,) minutes
    monthly: np.ndarray               # (years, 12) minutes
    attribution: np.ndarray           # (n_names,) minutes summed over the chunk
    failures: np.ndarray              # (n_names,) failures summed over the chunk
    burn_years: int = 0               # years whose incidents were replayed through the alerts
    pages: int = 0                    # incidents that paged
    incidents: int = 0                # incidents with any downtime
    time_to_page_sum: float = 0.0     # minutes
    paged_downtime: float = 0.0       # minutes of downtime in incidents that paged

    @staticmethod
    def merge(parts: list["ChunkTotals"]) -> "ChunkTotals":
        return ChunkTotals(
            years=sum(p.years for p in parts),
            downtime=np.concatenate([p.downtime for p in parts]),
            monthly=np.concatenate([p.monthly for p in parts]),
            attribution=np.sum([p.attribution for p in parts], axis=0),
            failures=np.sum([p.failures for p in parts], axis=0),
            burn_years=sum(p.burn_years for p in parts), pages=sum(p.pages for p in parts), incidents=sum(p.incidents for p in parts),
            time_to_page_sum=sum(p.time_to_page_sum for p in parts),
            paged_downtime=sum(p.paged_downtime for p in parts))


def month_of(start_hours: np.ndarray) -> np.ndarray:
    return np.minimum((start_hours / HOURS_PER_MONTH).astype(np.int64), 11)
