"""Autoscaling: a capacity shortage lasts at most the scale-out delay (closed forms, every engine)."""
from __future__ import annotations

import pytest

from conftest import assert_within, one_region, simulate
from lab.errors import ConfigError
from sim.model import model_from_dict

ENGINES = [("fast", 20_000), ("simpy", 20_000), ("simpy-full", 2_000)]
SCALE_OUT = {"scale_out_delay": "2h"}


@pytest.mark.parametrize("engine,years", ENGINES)
def test_failed_over_traffic_is_short_of_capacity_until_scale_out(engine, years):
    # two equal regions sized 1.5x their own traffic: after failover the survivor fails 25 %
    # of all requests, now only for the 2 h scale-out delay instead of the 10 h outage
    raw = {"regions": {"a": {"traffic_share": 0.5, "capacity": 1.5},
                       "b": {"traffic_share": 0.5, "capacity": 1.5}},
           "router": {"check_interval": "5s", "failure_threshold": 3, "timeout": "1s"},
           "groups": {"region": {"n": 1, "k": 1, "failover": True, "detection": "router"}},
           "failure_modes": {"region_outage": {"group": "region", "rate": 1, "duration": 10}},
           "autoscaling": SCALE_OUT}
    lost = 13.5 / 3600
    expected = 2 * (1 - 10 / 8760) * (0.5 * lost + 0.25 * 2) * 60
    tolerance = 0.01 * expected if engine == "fast" else 0.0   # both regions down: SimPy only
    assert_within(simulate(raw, engine=engine, years=years), expected, model_tolerance=tolerance)


@pytest.mark.parametrize("engine,years", ENGINES)
def test_a_lost_replica_is_replaced_by_scale_out(engine, years):
    # 2 replicas carry 1.5x the traffic: one lost (3 h) leaves 0.75, 25 % fail until scale-out
    raw = one_region({"web": {"n": 2, "k": 1, "capacity": True}},
                     {"crash": {"group": "web", "rate": 1, "duration": 3}}, autoscaling=SCALE_OUT)
    raw["regions"]["r"]["capacity"] = 1.5
    expected = 2 * (1 - 3 / 8760) * 0.25 * 2 * 60
    assert_within(simulate(raw, engine=engine, years=years), expected, model_tolerance=0.1)


@pytest.mark.parametrize("engine,years", ENGINES)
def test_a_load_spike_lasts_until_scale_out(engine, years):
    raw = one_region({"demand": {"n": 1, "k": 1, "share": 0.2, "scale_out": True}},
                     {"load_spike": {"group": "demand", "rate": 2, "duration": 10}},
                     autoscaling=SCALE_OUT)
    expected = 2 * (1 - 2 * 2 / 8760) * 0.2 * 2 * 60     # each spike hurts for min(10 h, 2 h)
    assert_within(simulate(raw, engine=engine, years=years), expected)


def test_scale_out_groups_need_an_autoscaling_section():
    raw = one_region({"demand": {"n": 1, "k": 1, "scale_out": True}},
                     {"load_spike": {"group": "demand", "rate": 2, "duration": 10}})
    with pytest.raises(ConfigError, match="needs an 'autoscaling' section"):
        model_from_dict(raw)
