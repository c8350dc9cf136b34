"""Helpers for the simulation tests: small validation models and engine runs."""
from __future__ import annotations

import math

import numpy as np
import pytest

from sim.model import model_from_dict
from sim.montecarlo import run_monte_carlo
from sim.topology import Topology


def one_region(groups: dict, modes: dict, **extra) -> dict:
    """A single-region model with flat traffic and ample capacity: downtime = unavailability."""
    raw = {"name": "validation", "regions": {"r": {"traffic_share": 1.0, "capacity": 10.0}},
           "groups": groups, "failure_modes": modes}
    raw.update(extra)
    return raw


def simulate(raw: dict, *, engine: str, years: int, seed: int = 7, chunk_years: int | None = None,
             workers: int = 1):
    topo = Topology(model_from_dict(raw).model)
    return run_monte_carlo(topo, raw, engine=engine, seed=seed, years=years,
                           budget_minutes=topo.model.budget_minutes, workers=workers,
                           chunk_years=chunk_years).totals


def assert_within(totals, expected: float, *, sigmas: float = 3.0, model_tolerance: float = 0.0):
    """Mean yearly downtime within `sigmas` standard errors (+ a stated model tolerance)."""
    mean = float(totals.downtime.mean())
    stderr = float(totals.downtime.std(ddof=1) / math.sqrt(totals.years))
    assert abs(mean - expected) <= sigmas * stderr + model_tolerance, (
        f"mean {mean:.4f} vs expected {expected:.4f} (stderr {stderr:.4f})")


@pytest.fixture
def rng():
    return np.random.default_rng(12345)
