"""Reading run directories tolerantly, and the verdict drawn from them (pure, no plots)."""
from __future__ import annotations

import json

import pytest

from fixtures import write_half_failed_run, write_run
from lab.errors import UsageError
from reports.compare import compare, find_previous
from reports.loader import load_run
from reports.summary import (BUDGET_AT_RISK, DATA_LOST, DEVIATED, INCOMPLETE, INVARIANT_VIOLATED, SAFE,
                             summarise)


def _edit(path, change):
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


@pytest.fixture
def run(tmp_path):
    return write_run(tmp_path / "run", experiments=["chat-server-crash", "nats-node-pause"], rate=5.0)


def test_a_directory_that_is_not_a_run_is_a_usage_error(tmp_path):
    (tmp_path / "stuff").mkdir()
    with pytest.raises(UsageError, match=r"is not a run directory: no run.json, experiments/ or sim/result.json"):
        load_run(tmp_path / "stuff")
    with pytest.raises(UsageError, match="is not a run directory"):
        load_run(tmp_path / "absent")


def test_half_failed_run_loads_with_what_is_missing_and_why(tmp_path):
    view = load_run(write_half_failed_run(tmp_path / "run"))
    missing = {m.what: m.why for m in view.all_missing}
    assert missing["sim/result.json"] == ("not written (step simulate failed: calibration found no usable "
                                          "journal for nats_node_down)")
    assert "planned in run.json but never started" in missing["experiments/postgres-partition/"]
    assert [e.status for e in view.experiments] == ["completed", "failed", "missing"]


def test_truncated_journal_and_bad_samples_are_noted_not_raised(run):
    journal = run / "experiments" / "chat-server-crash" / "journal.json"
    journal.write_text(journal.read_text()[:200])
    samples = run / "experiments" / "nats-node-pause" / "samples.csv"
    samples.write_text(samples.read_text() + "garbage,row,x,y\n")
    _edit(run / "sim" / "result.json", lambda d: d.update(schema="nineslab.sim/0"))
    view = load_run(run)
    missing = {m.what: m.why for m in view.all_missing}
    assert missing["experiments/chat-server-crash/journal.json"].startswith("not valid JSON at line")
    assert missing["experiments/nats-node-pause/samples.csv"] == "1 malformed row(s) skipped"
    assert "schema is 'nineslab.sim/0', expected 'nineslab.sim/1'" in missing["sim/result.json"]
    assert view.sim is not None                      # read as far as it goes
    assert summarise(view).verdict == INCOMPLETE


@pytest.mark.parametrize("change, verdict, first_reason", [
    (None, SAFE, None),
    (("sim", lambda d: d.update(gate={"passed": False, "reasons": ["P too high"]})), BUDGET_AT_RISK, "budget: P too high"),
    (("journal", lambda d: d.update(verdict="deviated", reasons=["f1: detected after 40 s, allowed 30 s"])),
     DEVIATED, "chat-server-crash: f1: detected after 40 s, allowed 30 s"),
    (("journal", lambda d: d["invariants"][0].update(ok=False, counts={"lost": 0, "duplicated": 2})),
     INVARIANT_VIOLATED, "chat-server-crash: chat.no_loss: 2 duplicated"),
    (("journal", lambda d: d["invariants"][0].update(ok=False, counts={"lost": 1}, examples=[{"id": "m-9"}])),
     DATA_LOST, "chat-server-crash: chat.no_loss: 1 lost (e.g. m-9)"),
    (("journal", lambda d: d.update(status="interrupted", errors=["Ctrl-C"])), INCOMPLETE,
     "chat-server-crash: experiment interrupted: Ctrl-C"),
])
def test_verdict_table(run, change, verdict, first_reason):
    if change:
        which, fn = change
        path = run / "sim" / "result.json" if which == "sim" else \
            run / "experiments" / "chat-server-crash" / "journal.json"
        _edit(path, fn)
    s = summarise(load_run(run))
    assert s.verdict == verdict
    assert (s.reasons[0] if s.reasons else None) == first_reason


def test_skipped_invariant_means_data_loss_unknown(run):
    _edit(run / "experiments" / "chat-server-crash" / "journal.json",
          lambda d: d.update(invariants=[{"name": "chat.no_loss", "ok": None, "counts": {}, "examples": []}]))
    rows = {r.name: r for r in summarise(load_run(run)).experiments}
    assert rows["chat-server-crash"].data_lost == "unknown"
    assert rows["nats-node-pause"].data_lost == "no"


def test_never_detected_reads_never(run):
    _edit(run / "experiments" / "chat-server-crash" / "journal.json",
          lambda d: d["measurements"][0].update(detection_seconds=None))
    row = summarise(load_run(run)).experiments[0]
    assert row.detection_seconds is None and row.detection_never


def test_missing_gate_is_judged_by_the_sim_gate_rule(run):
    _edit(run / "sim" / "result.json", lambda d: d.pop("gate"))
    b = summarise(load_run(run)).budget
    assert b.gate_passed is False                      # fixture's P ≈ 12 % > the default 5 % threshold
    assert any("threshold" in r for r in b.gate_reasons)


def test_previous_is_the_newest_older_sibling_and_changes_have_directions(tmp_path):
    old = write_run(tmp_path / "runs" / "a", experiments=["chat-server-crash"], scale=1.5, t0=1000.0, rate=5.0)
    mid = write_run(tmp_path / "runs" / "b", experiments=["chat-server-crash"], scale=1.0, t0=2000.0, rate=5.0)
    new = write_run(tmp_path / "runs" / "c", experiments=["nats-node-pause"], scale=2.0, t0=3000.0, rate=5.0)
    assert find_previous(old) is None
    assert find_previous(mid) == old.resolve()
    assert find_previous(new) == mid.resolve()
    c = compare(summarise(load_run(mid)), summarise(load_run(old)), "a")
    d = {ch.key: ch.direction for ch in c.changes}
    assert d["chat-server-crash.detection"] == "better" and d["sim.mean_downtime"] == "better"
    c = compare(summarise(load_run(new)), summarise(load_run(mid)), "b")
    d = {ch.key: ch.direction for ch in c.changes}
    assert d["sim.mean_downtime"] == "worse"
    assert d["nats-node-pause.detection"] == "new" and d["chat-server-crash.detection"] == "gone"


def test_time_axis_is_relative_to_the_journal_t0(run):
    from reports.series import marks, sli_series

    exp = load_run(run).experiments[0]                # chat-server-crash: fault 30–50 s after t0
    m = marks(exp)
    assert m.faults[0][:2] == pytest.approx((30.0, 50.0))
    assert m.detections == pytest.approx([30.0 + 11.8]) and m.recoveries == pytest.approx([50.0 + 3.1])
    assert sli_series(exp).t[0] == 0.0


def test_a_fault_left_in_place_is_a_reason(run):
    _edit(run / "experiments" / "chat-server-crash" / "journal.json",
          lambda d: d["faults"][0].update(rolled_back=False))
    s = summarise(load_run(run))
    assert s.verdict == INCOMPLETE
    assert s.reasons[0] == "chat-server-crash: fault f1 (process.kill chat-us-east-1) was not rolled back"


def test_without_per_second_rows_the_timeline_comes_from_samples(run):
    from reports.series import sli_series, throughput

    _edit(run / "experiments" / "chat-server-crash" / "journal.json", lambda d: d["slis"].update(per_second=[]))
    exp = load_run(run).experiments[0]
    series = sli_series(exp)
    assert series.source == "samples.csv"
    assert series.t[0] == 0.0
    inside = series.success_pct[(series.t >= 31) & (series.t < 40)]
    outside = series.success_pct[series.t < 29]
    assert inside.mean() < 80 and outside.min() == 100.0
    tp = throughput(exp)
    assert sum(v.sum() for v in tp.by_outcome.values()) == len(exp.samples)
