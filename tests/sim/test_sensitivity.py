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
    from sim.sensitivity import candidate_parameters

    raw = load_model().raw
    names = {name for name, _, _ in candidate_parameters(raw)}
    assert {"router.check_interval", "region_outage.rate", "region_partition.duration",
            "deploy_failure.change_failure_rate", "groups.interconnect.share"} <= names
    rows = tornado(raw, engine="fast", seed=1, years=500, workers=1,
                   only=("router.check_interval", "region_partition.", "chat_server_crash.rate"))
    swings = [r["swing_minutes"] for r in rows]
    assert swings == sorted(swings, reverse=True)
    # a partition lasts tens of minutes; a crashed chat replica, seconds
    assert rows[0]["parameter"].startswith("region_partition.")
    assert rows[-1]["parameter"] == "chat_server_crash.rate"
