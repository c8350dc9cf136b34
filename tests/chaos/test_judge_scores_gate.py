"""The Mann-Whitney judge, the scores and the gate's exit codes, on made-up data."""
from __future__ import annotations

import json

import numpy as np
import pytest

from chaos import gate, judge, scoring
from chaos.junit import junit_xml
from lab.errors import ExitCode


def test_judge_flags_a_latency_increase_and_passes_noise():
    rng = np.random.default_rng(1)
    control = rng.normal(20, 2, 300).tolist()
    same = rng.normal(20, 2, 300).tolist()
    slow = rng.normal(60, 5, 300).tolist()
    assert judge.compare(control, same)["classification"] == "Pass"
    r = judge.compare(control, slow)
    assert r["classification"] == "High" and r["harmful"] and r["estimate"] == pytest.approx(40, abs=1.5)
    assert r["ci"][0] < r["estimate"] < r["ci"][1] and r["cles"] > 0.99
    verdict = judge.judge({"latency_ms": (control, slow), "success": ([1.0] * 300, [1.0] * 300)})
    assert verdict["score"] == 50.0


def test_judge_warns_on_few_samples():
    r = judge.compare([1, 2, 3], [1, 2, 4])
    assert r["warnings"] and "few samples" in r["warnings"][0]
    assert judge.compare([], [1.0])["classification"] == "NoData"


def test_a_latency_drop_is_not_harmful():
    r = judge.compare([50.0 + i % 5 for i in range(100)], [10.0 + i % 5 for i in range(100)])
    assert r["classification"] == "Low" and not r["harmful"]


@pytest.mark.parametrize("verdict, burned, expected", [
    ("passed", 0.0, 100.0), ("passed", 2.19, 50.0), ("passed", 10, 0.0),
    ("deviated", 0.0, 50.0), ("invariant_violated", 0.0, 0.0), ("error", 0.0, 0.0)])
def test_budget_score(verdict, burned, expected):
    assert scoring.budget_score(verdict, burned) == expected


def test_litmus_style_score():
    assert scoring.probe_success_percentage("passed", 0, 3) == 100
    assert scoring.probe_success_percentage("deviated", 2, 3) == 66
    assert scoring.probe_success_percentage("deviated", 0, 0) == 0
    journals = [_journal("a", "passed", weight=10), _journal("b", "deviated", weight=5, probes=(1, 3))]
    o = scoring.overall(journals)
    assert o["litmus_resilience_score"] == 77.66          # (10*100 + 5*33) / 15 = 77.666..., truncated
    assert o["score"] == pytest.approx((10 * 100 + 5 * 50) / 15, abs=0.01)


def _journal(name, verdict, *, weight=5, probes=(1, 1), burned=0.0, status="completed", invariants=()):
    passed, total = probes
    plist = [{"name": f"p{i}", "met": i < passed} for i in range(total)]
    return {"schema": "nineslab.journal/1", "experiment": {"name": name}, "status": status,
            "verdict": verdict, "weight": weight, "budget_minutes_burned": burned,
            "score": scoring.budget_score(verdict, burned), "reasons": [f"{name} reason"] if verdict != "passed" else [],
            "invariants": list(invariants), "hypothesis": {"before": {"met": True, "probes": plist}, "during": [],
                                                          "after": {"met": True, "probes": []}}}


@pytest.mark.parametrize("verdicts, sim, kw, code", [
    (["passed", "passed"], None, {}, ExitCode.OK),
    (["passed", "deviated"], None, {}, ExitCode.HYPOTHESIS_DEVIATED),
    (["deviated", "invariant_violated"], None, {}, ExitCode.INVARIANT_VIOLATED),
    (["invariant_violated", "error"], None, {}, ExitCode.LAB_ERROR),
    ([], None, {}, ExitCode.LAB_ERROR),
    (["passed"], {"p_exceed": {"estimate": 0.2}}, {}, ExitCode.BUDGET_AT_RISK),
    (["passed"], {"p_exceed": {"estimate": 0.01}}, {}, ExitCode.OK),
    (["passed"], None, {"max_burn_minutes": 0.01}, ExitCode.BUDGET_AT_RISK),
    (["deviated"], None, {"min_score": 90}, ExitCode.HYPOTHESIS_DEVIATED),
])
def test_gate_exit_codes(verdicts, sim, kw, code, monkeypatch):
    monkeypatch.setattr(gate, "sim_gate", lambda s, threshold, budget_minutes: (
        s["p_exceed"]["estimate"] <= threshold, [] if s["p_exceed"]["estimate"] <= threshold else ["P too high"]))
    journals = [_journal(f"e{i}", v, burned=0.1, invariants=[{"name": "chat.no_loss", "ok": False}]
                         if v == "invariant_violated" else ()) for i, v in enumerate(verdicts)]
    result = gate.evaluate(journals, [], sim, **kw)
    assert result.code == code, result.reasons
    xml = junit_xml(result)
    assert xml.startswith("<?xml") and f'tests="{len(journals) + 1}"' in xml


def test_gate_reads_a_run_directory(tmp_path):
    with pytest.raises(Exception, match="not a directory"):
        gate.gate_run(tmp_path / "missing")
    (tmp_path / "experiments" / "a").mkdir(parents=True)
    (tmp_path / "experiments" / "a" / "journal.json").write_text(json.dumps(_journal("a", "passed")))
    (tmp_path / "experiments" / "b").mkdir(parents=True)
    (tmp_path / "experiments" / "b" / "journal.json").write_text("{not json")
    result = gate.gate_run(tmp_path)
    assert result.code == ExitCode.LAB_ERROR and "unreadable journal" in result.reasons[0]


def test_a_drop_in_success_rate_is_harmful_even_when_medians_agree():
    control = [1.0] * 500
    experiment = [1.0] * 450 + [0.0] * 50          # 90 % success: both medians are 1
    r = judge.compare(control, experiment, metric="success")
    assert r["classification"] == "Low" and r["harmful"] and r["estimate"] == pytest.approx(-0.1)
    assert judge.compare(control, [1.0] * 499 + [0.0], metric="success")["classification"] == "Pass"
