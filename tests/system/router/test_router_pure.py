"""The router's decisions in virtual time: health state machine, detection delay, failover."""
from __future__ import annotations

import pytest

from system.common.regions import UnknownUser, home_region
from system.router.health import HEALTHY, UNHEALTHY, UNKNOWN, HealthPolicy, ServerHealth
from system.router.routing import choose, failover_changes, region_down

REGIONS = ["us-east", "eu-west", "ap-south"]


def run(h: ServerHealth, results: list[bool]) -> list[tuple[float, str]]:
    """Feed probe results at the times the state machine asks for; the transitions with times."""
    now, out = 0.0, []
    for ok in results:
        changed = h.observe(ok, now)
        if changed:
            out.append((round(now, 3), changed))
        now += h.next_delay()
    return out


@pytest.mark.parametrize("interval,threshold,results,expected", [
    # defaults: healthy at first success, unhealthy after 3 failures 5 s apart
    (5.0, 3, [True, False, False, False], [(0.0, HEALTHY), (15.0, UNHEALTHY)]),
    # one failure in between does not count
    (5.0, 3, [True, False, False, True, False, False], [(0.0, HEALTHY)]),
    # fast test settings: 0.2 s x 2
    (0.2, 2, [True, False, False], [(0.0, HEALTHY), (0.4, UNHEALTHY)]),
    # recovery needs 2 successes in a row
    (1.0, 2, [True, False, False, True, False, True, True], [(0.0, HEALTHY), (2.0, UNHEALTHY), (6.0, HEALTHY)]),
    # never up: unhealthy from unknown after the threshold
    (1.0, 3, [False, False, False], [(2.0, UNHEALTHY)]),
])
def test_health_transitions(interval, threshold, results, expected):
    h = ServerHealth("chat-1", "us-east", HealthPolicy(check_interval=interval, failure_threshold=threshold))
    assert h.state == UNKNOWN
    assert run(h, results) == expected


def test_probes_back_off_while_unhealthy_and_are_capped():
    h = ServerHealth("c", "us-east", HealthPolicy(check_interval=1.0, failure_threshold=2, backoff_factor=2,
                                                  max_check_interval=3.0))
    delays = []
    for _ in range(6):
        h.observe(False, 0.0)
        delays.append(h.next_delay())
    assert delays == [1.0, 1.0, 2.0, 3.0, 3.0, 3.0]
    h.observe(True, 0.0)
    assert h.next_delay() == 1.0            # recovering: probe at the normal pace


def test_choose_prefers_home_then_ring_order_and_is_sticky():
    healthy = {"us-east": ["chat-us-east-1", "chat-us-east-2"], "eu-west": ["chat-eu-west-1"], "ap-south": []}
    c = choose("alice@us-east", REGIONS, healthy)
    assert c.region == "us-east" and not c.failed_over
    assert choose("alice@us-east", REGIONS, healthy) == c
    c = choose("zed@ap-south", REGIONS, healthy)
    assert c.region == "us-east" and c.failed_over      # ap-south -> us-east is next in the ring
    healthy["us-east"] = []
    assert choose("alice@us-east", REGIONS, healthy).region == "eu-west"
    assert choose("alice@us-east", REGIONS, {r: [] for r in REGIONS}) is None
    with pytest.raises(UnknownUser):
        choose("x@mars", REGIONS, healthy)
    assert home_region("alice@us-east", REGIONS) == "us-east"


def test_failover_changes_report_only_transitions():
    before = {r: False for r in REGIONS}
    after = region_down(REGIONS, {"us-east": [], "eu-west": ["a"], "ap-south": ["b"]})
    assert failover_changes(before, after) == [("us-east", "failed_over")]
    assert failover_changes(after, after) == []
    assert failover_changes(after, before) == [("us-east", "restored")]
