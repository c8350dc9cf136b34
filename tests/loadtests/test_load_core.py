"""Pure parts of the load generator, in virtual time: arrivals, dispatcher, health, HDR, capacity."""
from __future__ import annotations

import random

import pytest

from lab.errors import UsageError
from loadtests.arrivals import intended_offsets, parse_shape, partition
from loadtests.capacity import Search, SearchPolicy, judge_step
from loadtests.dispatcher import Dispatcher
from loadtests.hdr import LatencyBook, summarize
from loadtests.health import CpuSampler, judge
from loadtests.ledger import LedgerWriter, checksum, read_ledger
from loadtests.samples import Sample, SampleWriter, merge_parts, read_samples


def offsets(spec: str, rate: float, duration: float, seed: int = 1) -> list[float]:
    return list(intended_offsets(parse_shape(spec, rate, duration), duration, random.Random(seed)))


@pytest.mark.parametrize("spec, rate, duration, expected, tolerance", [
    ("constant", 100, 10, 1000, 0),
    ("poisson", 100, 10, 1000, 100),           # ~3 sigma of a Poisson count of 1000
    ("step:every=5,by=100", 100, 10, 1500, 1),
    ("spike:at=4,for=2,factor=5", 100, 10, 1800, 1),
    ("diurnal:period=10,amplitude=0.5", 100, 10, 1000, 2),
    ("spike:at=4,for=2,factor=5,poisson=1", 100, 10, 1800, 150),
])
def test_shapes_give_the_integral_of_their_rate(spec, rate, duration, expected, tolerance):
    got = offsets(spec, rate, duration)
    assert abs(len(got) - expected) <= tolerance
    assert got == sorted(got) and all(0 <= t < duration for t in got)
    assert abs(parse_shape(spec, rate, duration).expected_count(duration) - expected) <= 2


def test_spike_concentrates_arrivals_in_its_window():
    got = offsets("spike:at=4,for=2,factor=5", 100, 10)
    assert sum(4 <= t < 6 for t in got) == 1000
    assert sum(t < 4 for t in got) == 400


def test_same_seed_same_schedule_other_seed_other():
    assert offsets("poisson", 50, 5, seed=7) == offsets("poisson", 50, 5, seed=7)
    assert offsets("poisson", 50, 5, seed=7) != offsets("poisson", 50, 5, seed=8)


def test_partition_splits_the_global_schedule_exactly():
    whole = offsets("poisson", 200, 3)
    parts = [list(partition(iter(whole), i, 3)) for i in range(3)]
    assert sorted(t for p in parts for t in p) == whole
    assert max(len(p) for p in parts) - min(len(p) for p in parts) <= 1


@pytest.mark.parametrize("spec, message", [
    ("bogus", "unknown arrival shape 'bogus'"),
    ("step:every=x", "must read key=number"),
    ("spike:height=3", "has no option 'height'"),
    ("diurnal:amplitude=2", "amplitude must lie between 0 and 1"),
])
def test_bad_shapes_say_what_is_wrong(spec, message):
    with pytest.raises(UsageError, match=message):
        parse_shape(spec, 10, 10)


def test_dispatcher_counts_drops_and_tells_wake_lag_from_queueing():
    d = Dispatcher(iter([0.0, 0.1, 0.2, 0.3]), t0=100.0, max_lateness=1.0, late_threshold=0.01)
    a = d.take(now=99.9)                      # idle worker takes it early, wakes 50 ms late: generator lag
    assert d.admit(a, now=100.05) and d.stats.late == 1
    b = d.take(now=101.5)                     # a busy pool took it 1.4 s late: dropped, not lag
    assert not d.admit(b, now=101.5) and d.stats.dropped == 1 and d.stats.late == 1
    c = d.take(now=100.5)                     # taken late but within max lateness: queueing
    assert d.admit(c, now=100.5) and d.stats.max_queue_delay == pytest.approx(1.4)
    assert d.finish(now=100.35) == [100.3]    # still due at stop: dropped, never skipped
    assert d.stats.dropped == 2 and d.stats.issued == 4 and d.take(200.0) is None


def test_dispatcher_deals_each_lane_its_members_share_whatever_the_other_lanes_do():
    d = Dispatcher(iter([0.1 * i for i in range(30)]), t0=100.0, max_lateness=5.0)
    for lane in ("east", "east", "west"):          # two workers of the east lane, one of the west
        d.join(lane)
    # the east lane fails at once and comes straight back; the west worker is stuck on a
    # slow answer and takes nothing until the end: the east lane still gets only its share
    east = []
    while (a := d.take(now=100.0, lane="east")) is not None:
        east.append(a.index)
    assert east == [i for i in range(30) if i % 3 != 2]
    assert not d.exhausted                         # the west lane's share waits for its worker
    west = [d.take(now=102.0, lane="west") for _ in range(10)]
    assert [a.index for a in west] == list(range(2, 30, 3))
    assert [d.admit(a, now=102.0) for a in west] == [True] * 10
    assert d.stats.max_queue_delay == pytest.approx(1.8)      # queueing, not wake lag
    assert d.stats.late == 0 and d.take(now=102.0, lane="west") is None and d.exhausted


def test_dispatcher_drops_a_lanes_due_arrivals_at_stop():
    d = Dispatcher(iter([0.0, 0.1, 0.2, 0.3, 0.4]), t0=100.0)
    d.join("a"), d.join("b")
    assert d.take(now=99.0, lane="a").index == 0
    assert d.take(now=99.0, lane="a").index == 2   # index 1 is b's, queued for b
    assert d.finish(now=100.25) == [100.1]         # b's queued one was due; 0.3 and 0.4 were not
    assert d.stats.issued == 3 and d.stats.dropped == 1 and d.exhausted


def test_health_judge_blames_the_generator_only_for_its_own_faults():
    ok, reasons = judge([{"worker": 0, "cpu_mean_percent": 40.0, "late": 1, "wake_lag_sum": 0.1,
                          "wake_lag_n": 1000}], started=1000)
    assert ok and reasons == []
    ok, reasons = judge([{"worker": 0, "cpu_mean_percent": 97.0, "cpu_warnings": 1, "late": 50,
                          "wake_lag_sum": 20.0, "wake_lag_n": 1000}], started=1000)
    assert not ok and len(reasons) == 4 and "97" in reasons[1]


def test_cpu_sampler_in_virtual_time():
    clock, cpu = [0.0], [0.0]
    s = CpuSampler(cpu_times=lambda: cpu[0], clock=lambda: clock[0])
    s.sample()
    clock[0], cpu[0] = 1.0, 0.5
    assert s.sample() == pytest.approx(50.0)
    clock[0], cpu[0] = 2.0, 1.5
    assert s.summary()["cpu_mean_percent"] == pytest.approx(75.0)


def test_hdr_merge_adds_histograms_instead_of_averaging():
    a, b, both = LatencyBook(), LatencyBook(), LatencyBook()
    for i in range(1, 1001):
        a.record("op", i * 1.0, 1.0)
        both.record("op", i * 1.0, 1.0)
    for _ in range(1000):
        b.record("op", 5000.0, 1.0)
        both.record("op", 5000.0, 1.0)
    merged = LatencyBook()
    merged.add_encoded(a.encode())
    merged.add_encoded(b.encode())
    m, d = summarize(merged.total().corrected), summarize(both.total().corrected)
    assert m == d and m["count"] == 2000 and m["p99_ms"] == pytest.approx(5000, rel=0.002)


def test_backfilled_view_shows_a_stall_the_raw_view_hides():
    book = LatencyBook(expected_interval_ms=10.0)
    for _ in range(1000):
        book.record("op", 1.0, 1.0)
    book.record("op", 1000.0, 1000.0)            # one request held 1 s by a stall
    t = book.total()
    assert summarize(t.raw)["p99_ms"] < 2 and summarize(t.raw_backfilled)["p99_ms"] > 500


def test_samples_and_ledger_round_trip(tmp_path):
    w1, w2 = SampleWriter(tmp_path / "a.csv", buffer_rows=1), SampleWriter(tmp_path / "b.csv")
    w1.write(Sample(2.0, 2.1, 2.2, 200.0, 100.0, "ok", "op", "us-east"))
    w2.write(Sample(1.0, None, None, None, None, "dropped", "op", "", "late"))
    w1.close(), w2.close()
    assert merge_parts([tmp_path / "a.csv", tmp_path / "b.csv"], tmp_path / "s.csv") == 2
    rows = list(read_samples(tmp_path / "s.csv"))
    assert [r.outcome for r in rows] == ["dropped", "ok"] and rows[1].region == "us-east"
    assert rows[0].latency_ms is None
    led = LedgerWriter(tmp_path / "l.jsonl")
    led.record("profile", id="p1", version=2, checksum=checksum({"b": 1, "a": 2}), ts=1.0)
    led.close()
    (entry,) = read_ledger(tmp_path / "l.jsonl")
    assert entry["kind"] == "profile" and entry["checksum"] == checksum({"a": 2, "b": 1})


def _doc(p99, errors=0, rps=100.0, valid=True):
    return {"counts": {"intended": 1000, "ok": 1000 - errors, "error": errors, "dropped": 0},
            "p99_ms": p99, "rps": rps, "valid": valid, "generator": {"reasons": ["cpu"]}}


def test_capacity_search_steps_to_the_knee_and_bisects():
    policy = SearchPolicy(slo_p99_ms=100, start_rate=100, factor=2, refine=2)
    s = Search(policy)
    knee = 500.0
    rate = s.first()
    while rate is not None:
        rate = s.feed(judge_step(policy, rate, _doc(50 if rate <= knee else 900, rps=rate)))
    assert [st.rate for st in s.steps] == [100, 200, 400, 800, 600, 500]
    assert s.result()["capacity_rps"] == 500


def test_capacity_search_stops_when_the_generator_saturates():
    policy = SearchPolicy(slo_p99_ms=100, start_rate=100)
    s = Search(policy)
    assert s.feed(judge_step(policy, 100, _doc(10, rps=100))) == 150
    assert s.feed(judge_step(policy, 150, _doc(10, rps=150, valid=False))) is None
    assert s.result()["generator_limited"] and s.result()["capacity_rps"] == 100
    assert not judge_step(policy, 100, _doc(10, errors=50)).ok
    assert "short of" in judge_step(policy, 100, _doc(10, rps=50)).why
