"""The pure parts of analytics: event parsing and keys, rollups, latency quantiles, the
alert and lag state machines, the query language."""
from __future__ import annotations

import json

import pytest

from system.analytics.alerts import ErrorRateAlert, LagTracker
from system.analytics.model import BadEvent, parse, quantile_from_buckets, rollup
from system.analytics.serving import QueryError, buckets, parse_metric, series

REGIONS = ["us-east", "eu-west", "ap-south"]


def test_parse_keys_and_statuses():
    m = parse("chat.eu-west", json.dumps({"id": "x1", "conv": "c", "to_region": "eu-west", "ts": 100.5}).encode(),
              7, 99.0)
    assert (m.key, m.status, m.region, m.second) == ("sent:x1", "sent", "eu-west", 100)
    d = parse("events.delivered.us-east", b'{"id": "x1", "latency_ms": 12.5, "ts": 101}', 8, 0)
    assert (d.key, d.status, d.latency_ms) == ("delivered:x1", "delivered", 12.5)
    f = parse("events.send_failed.us-east", b'{"type": "send_failed"}', 9, 102.0)
    assert f.key == "failed:#events:9" and f.ts == 102.0       # no id: the stream sequence, stream time
    assert parse("events.other.us-east", b"{}", 1, 1.0) is None
    with pytest.raises(BadEvent):
        parse("chat.us-east", b"not json", 1, 1.0)


def test_rollup_counts_each_dimension():
    events = [parse("chat.us-east", b'{"id": "1", "ts": 5}', 1, 0), parse("chat.eu-west", b'{"id": "2", "ts": 5}', 2, 0),
              parse("events.delivered.us-east", b'{"id": "1", "latency_ms": 30, "ts": 6}', 3, 0),
              parse("events.send_failed.us-east", b'{"id": "3", "ts": 6}', 4, 0)]
    r = rollup(events)
    assert r[(5, "messages", "")] == 2 and r[(5, "messages_region", "eu-west")] == 1
    assert r[(6, "status", "failed")] == 1 and r[(6, "latency_bucket", "50")] == 1 and r[(6, "latency_sum", "")] == 30


def test_quantiles_interpolate_within_buckets():
    assert quantile_from_buckets({}, 0.99) is None
    assert quantile_from_buckets({"100": 100}, 0.5) == pytest.approx(75.0)     # (50, 100]
    assert quantile_from_buckets({"10": 99, "1000": 1}, 0.99) == pytest.approx(10.0)
    assert quantile_from_buckets({"+Inf": 5}, 0.99) == 30000.0


@pytest.mark.parametrize("steps", [
    [(100, 0, None), (90, 10, "firing"), (93, 7, None), (95, 5, "resolved"), (96, 4, None)],  # 5 % is not above 5 %
    [(5, 5, None)],                                # too few events to judge
])
def test_error_rate_alert(steps):
    alert = ErrorRateAlert(0.05, min_events=20)
    for t, (sent, failed, change) in enumerate(steps):
        assert alert.evaluate(sent, failed, float(t)) == change


def test_lag_tracker():
    lag = LagTracker(5.0)
    assert lag.evaluate(10, 1.0) is None and lag.evaluate(10, 6.0) == "lagging"
    assert lag.evaluate(3, 9.0) is None and lag.evaluate(0, 0.0) == "caught_up"


def test_query_language():
    assert parse_metric("messages.eu-west", REGIONS).label == "eu-west"
    with pytest.raises(QueryError, match="unknown metric"):
        parse_metric("bogus", REGIONS)
    with pytest.raises(QueryError, match="at most"):
        buckets(0, 1e6, 1)
    first, last, n = buckets(10.2, 20.5, 5)
    assert (first, last, n) == (10, 21, 3)
    q = parse_metric("error_rate", REGIONS)
    pts = series(q, [(10, "sent", 9), (11, "failed", 1), (16, "sent", 4)], first, 5, n)
    assert [p["value"] for p in pts] == [0.1, 0.0, 0.0]
