"""Detection, recovery, downtime and budget from tables, in virtual time."""
from __future__ import annotations

import pytest

from chaos import detection as d
from chaos.experiment import Fault, Slo
from chaos.slis import per_second, window_stats
from scenario import T0, outage, samples


def ev(t, kind="health", subject="chat-us-east-1", state="unhealthy", source="router-1"):
    return {"ts": T0 + t, "kind": kind, "subject": subject, "state": state, "source": source}


def test_window_stats_and_per_second():
    s = samples(10, bad=outage(5, 7, 0.5))
    w = window_stats(s, T0, T0 + 10)
    assert w["requests"] == 100 and w["errors"] == 10 and w["availability"] == 0.9
    rows = per_second(s, T0, T0 + 10)
    assert [r["availability"] for r in rows] == [1, 1, 1, 1, 1, 0.5, 0.5, 1, 1, 1]
    assert rows[0]["p50_ms"] == pytest.approx(20.45)
    assert per_second([], T0, T0 + 2)[0]["availability"] is None


@pytest.mark.parametrize("bad, fault_end, hold, expected", [
    ({}, 30, 3, 0.0),                                # never degraded
    (outage(20, 34), 30, 3, 4.0),                    # back 4 s after the fault ended
    (outage(20, 26), 30, 3, 0.0),                    # healed (failed over) while the fault was on
    (outage(20, 60), 30, 3, None),                   # never back
    ({**outage(20, 32), 33: 1.0}, 30, 3, 4.0),       # a relapse restarts the streak
    (outage(20, 32, 0.005), 30, 3, 0.0),             # within tolerance of baseline
])
def test_recovery(bad, fault_end, hold, expected):
    rows = per_second(samples(60, bad=bad), T0, T0 + 60)
    assert d.recovery_seconds(rows, fault_end, 1.0, tolerance=0.01, hold=hold) == expected


def test_downtime_counts_seconds_below_the_slo():
    rows = per_second(samples(60, bad={**outage(20, 25), 40: 0.1}), T0, T0 + 60)
    assert d.downtime_seconds(rows, 0.99) == 6
    assert d.downtime_seconds(rows, 0.85) == 5
    assert d.downtime_seconds(rows, 0.99, 0, 30) == 5
    assert d.budget_minutes(6) == 0.1


def test_detection_takes_the_first_matching_event_after_the_fault():
    events = [ev(5), ev(27, subject="chat-eu-west-1"), ev(32.5), ev(33), ev(34, kind="failover",
              subject="us-east", state="failed_over")]
    secs, event = d.detection_seconds(events, [{"kind": "health", "subject": "chat-us-east-*",
                                                "state": "unhealthy"}], T0 + 20)
    assert secs == 12.5 and event["ts"] == T0 + 32.5
    assert d.failover_seconds(events, event["ts"]) == 1.5
    assert d.detection_seconds(events, [{"kind": "breaker"}], T0 + 20) == (None, None)


def test_default_matchers():
    assert d.default_matchers("process.kill", ["chat-us-east-1"]) == [
        {"kind": "health", "subject": "chat-us-east-1", "state": "unhealthy"}]
    assert d.default_matchers("proxy.cut", ["chat-us-east-1>pg-us-east"]) == [
        {"kind": "breaker", "source": "chat-us-east-1", "subject": "postgres", "state": "open"}]
    assert d.default_matchers("proxy.partition", ["us-east"]) == [
        {"kind": "failover", "subject": "us-east", "state": "failed_over"}]
    assert d.default_matchers("process.kill", ["region:eu-west"])[0]["subject"] == "eu-west"


def test_measure_fault():
    rows = per_second(samples(60, bad=outage(20, 33)), T0, T0 + 60)
    fault = Fault.model_validate({"id": "f1", "kind": "process.kill", "target": "chat-us-east-1",
                                  "at": 20, "for": 10, "failure_mode": "chat_server_crash"})
    m = d.measure_fault(fault=fault, start_ts=T0 + 20, end_ts=T0 + 30, t0=T0, per_second=rows,
                        events=[ev(31), ev(32, kind="failover", subject="us-east", state="failed_over")],
                        matchers=d.default_matchers("process.kill", ["chat-us-east-1"]),
                        baseline=1.0, slo=Slo())
    assert m["detection_seconds"] == 11 and m["failover_seconds"] == 1
    assert m["recovery_seconds"] == 3 and m["downtime_seconds"] == 13
    assert m["error_rate_during"] == 1.0 and m["failure_mode"] == "chat_server_crash"


def test_stop_conditions():
    from chaos.experiment import StopConditions
    from chaos.stop_conditions import accumulate, recent_availability, stop_reason
    series: list[dict] = []
    for t in range(20):
        accumulate(series, t + 0.5, {"ok": 10 if t < 5 else 0, "error": 0 if t < 5 else 10})
    assert stop_reason(series, StopConditions(), Slo()) is None
    assert recent_availability(series[:7], 5) == pytest.approx(0.6)   # seconds 2-6: 30 ok, 20 failed
    assert recent_availability([], 5) is None
    assert "budget-minutes" in stop_reason(series, StopConditions(max_budget_minutes=0.2), Slo())
    assert "in a row" in stop_reason(series, StopConditions(min_availability=0.5, for_seconds=10), Slo())
    assert stop_reason(series[:10], StopConditions(min_availability=0.5, for_seconds=10), Slo()) is None


def test_hypothesis_phases_from_samples():
    from chaos.experiment import parse_experiment
    from chaos.analysis import analyse
    exp = parse_experiment("""
schema: nineslab.experiment/1
name: t
title: t
load: {duration: 40, warmup: 2}
hypothesis:
  probes:
    - {name: a, sli: availability, tolerance: {min: 0.99}}
    - {name: a-during, sli: availability, phases: [during], window_seconds: 3, tolerance: {min: 0.5}}
faults: [{id: f1, kind: process.kill, target: x, at: 10, for: 10, expect: {recovery_within: 3}}]
slo: {settle_seconds: 5}
""", path="t.yaml")
    timeline = [{"id": "f1", "at": 10, "for": 10, "start": T0 + 10, "end": T0 + 21, "targets": ["x"]}]
    s = samples(40, bad={**outage(10, 13), **outage(13, 20, 0.3)})
    a = analyse(exp, t0=T0, t_end=T0 + 40, timeline=timeline, samples=s, events=[], live_probes=[],
                invariants=[], status="completed")
    assert a["hypothesis"]["before"]["met"] and a["hypothesis"]["after"]["met"]
    assert a["hypothesis"]["before"]["window"] == [2.0, 10.0] and a["hypothesis"]["after"]["window"] == [25.0, 40.0]
    failed = [c["t"] for c in a["hypothesis"]["during"] if not c["met"]]
    assert failed == [13.0, 14.0, 15.0]      # full 3 s windows from t=13 still holding the outage
    assert a["verdict"] == "deviated" and a["downtime_seconds"] == 10
    assert a["measurements"][0]["recovery_seconds"] == 0.0
    assert a["judgement"]["metrics"][1]["harmful"]
