"""Sensitivity and what-if on common random numbers."""
from __future__ import annotations

from sim.model import load_model
from sim.sensitivity import tornado, what_if


def test_what_if_on_common_random_numbers_is_not_noise():
    base = load_model().raw
    slower = load_model(overrides={"router.check_interval": "30s"}).raw
    diff = what_if(base, slower, engine="fast", seed=5, years=2_000)
    # slower health checks lengthen every detected outage: a small, certain increase
    assert 0.5 < diff["difference"] < 5.0
    again = what_if(base, slower, engine="fast", seed=6, years=2_000)
    assert abs(again["difference"] - diff["difference"]) < 0.2 * diff["difference"]
    same = what_if(base, base, engine="fast", seed=5, years=2_000)
    assert same["difference"] == 0.0


def test_tornado_ranks_by_swing():
    rows = tornado(load_model().raw, engine="fast", seed=1, years=300, workers=1)
    swings = [r["swing_minutes"] for r in rows]
    assert swings == sorted(swings, reverse=True)
    names = {r["parameter"] for r in rows}
    assert {"router.check_interval", "region_outage.rate", "region_partition.duration"} <= names
    assert rows[0]["swing_minutes"] > 1.0
