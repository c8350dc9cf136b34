"""The engine end to end on real processes, without the whole lab: a state file naming one real
HTTP server, the real load generator (trivial scenario) and the runtime's process control.
A crash of the server must show as downtime and a measured recovery; an experiment that
allows no downtime must turn red.
"""
from __future__ import annotations

import json
import sys
import time

import pytest

from chaos import recovery
from chaos.engine import EngineOptions, run_experiments
from chaos.experiment import parse_experiment
from lab.servers.base import ManagedProcess, ServerSpec, free_port, stop_pid, wait_until
from lab.state import load_state

pytestmark = [pytest.mark.slow]

EXPERIMENT = """
schema: nineslab.experiment/1
name: {name}
title: web server crash
load: {{scenario: trivial, rate: 40, duration: 12, warmup: 1, args: [--host, "{url}"]}}
hypothesis:
  probes:
    - {{name: availability, sli: availability, tolerance: {{min: 0.95}}}}
    - {{name: healthz, type: http, url: "{{endpoints[web-1]}}/healthz", tolerance: {{equals: 200}}}}
faults:
  - {{kind: process.kill, target: web-*, at: 4, for: 3, failure_mode: web_crash,
     expect: {expect}}}
slo: {{recovery_hold_seconds: 2, settle_seconds: 2}}
control: {{min_samples: 20}}
"""


@pytest.fixture
def web_lab(tmp_path):
    state_dir = tmp_path / "lab"
    state_dir.mkdir()
    port = free_port()
    argv = [sys.executable, "-m", "loadtests.trivial_server", "--port", str(port)]
    spec = ServerSpec(name="web-1", role="web", argv=argv, log_file=state_dir / "web-1.log", ports={"main": port})
    proc = ManagedProcess(spec)
    proc.start()
    url = f"http://127.0.0.1:{port}"
    import urllib.request
    wait_until(lambda: urllib.request.urlopen(url + "/healthz", timeout=1).status == 200, timeout=20, what="web-1")
    state = {"schema": "nineslab.state/1", "runtime": "local", "profile": "quick", "state_dir": str(state_dir),
             "created_at": time.time(), "endpoints": {"web-1": url}, "links": {},
             "processes": {"web-1": {"name": "web-1", "role": "web", "region": "us-east", "kind": "service",
                                     "pid": proc.pid, "create_time": proc.create_time, "ports": {"main": port},
                                     "argv": argv, "log_file": str(state_dir / "web-1.log"), "status": "running"}}}
    (state_dir / "state.json").write_text(json.dumps(state))
    try:
        yield state_dir, url
    finally:
        rec = load_state(state_dir).processes["web-1"]
        if rec.pid:
            stop_pid(rec.pid, rec.create_time, grace=5)
        proc.stop(grace=5)


def test_a_crash_is_measured_and_an_impossible_expectation_turns_red(web_lab, tmp_path):
    state_dir, url = web_lab
    ok = parse_experiment(EXPERIMENT.format(name="web-crash", url=url, expect="{recovery_within: 5}"),
                          path="web-crash.yaml")
    strict = parse_experiment(EXPERIMENT.format(name="web-crash-strict", url=url,
                                                expect="{max_downtime_seconds: 0}"), path="strict.yaml")
    out = tmp_path / "run"
    journals = run_experiments([ok, strict], EngineOptions(state_dir=state_dir, out_dir=out, seed=3,
                                                           handle_signals=False))
    first, second = journals
    assert first["status"] == "completed", first["errors"]
    fault = first["faults"][0]
    assert fault["rolled_back"] and fault["start"] and fault["end"] - fault["start"] == pytest.approx(3, abs=0.6)
    m = first["measurements"][0]
    assert m["downtime_seconds"] >= 2, first["slis"]["per_second"]
    assert m["recovery_seconds"] is not None and m["recovery_seconds"] <= 5
    assert m["error_rate_during"] > 0.5
    assert first["slis"]["before"]["availability"] == 1.0
    assert first["verdict"] == "passed", first["reasons"]
    assert first["budget_minutes_burned"] == pytest.approx(first["downtime_seconds"] / 60, abs=1e-3)
    assert first["judgement"]["metrics"][1]["metric"] == "success"
    assert first["judgement"]["metrics"][1]["harmful"] is True
    assert [p["name"] for p in first["hypothesis"]["before"]["probes"]] == ["availability", "healthz"]
    assert second["verdict"] == "deviated"
    assert any("downtime" in r for r in second["reasons"])
    assert (out / "experiments" / "web-crash" / "journal.json").exists()
    assert (out / "experiments" / "web-crash" / "samples.csv").exists()
    assert not list(recovery.faults_dir(state_dir).glob("*.json"))
    assert load_state(state_dir).processes["web-1"].status == "running"


def test_ctrl_c_of_nines_chaos_run_rolls_back_and_still_writes_the_journal(web_lab, tmp_path):
    import signal
    import subprocess
    state_dir, url = web_lab
    exp = tmp_path / "pause.yaml"
    exp.write_text(EXPERIMENT.format(name="web-pause", url=url, expect="{}").replace(
        "process.kill", "process.pause").replace("at: 4, for: 3", "at: 3, for: 20").replace(
        "duration: 12", "duration: 40"))
    out = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-m", "lab.cli", "chaos", "run", str(exp), "--out", str(out),
                             "--state-dir", str(state_dir)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        wait_until(lambda: load_state(state_dir).processes["web-1"].status == "paused", timeout=60,
                   what="the pause fault", alive=lambda: proc.poll() is None)
        assert list(recovery.faults_dir(state_dir).glob("*.json"))
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=90)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err[-2000:]
    assert "Traceback" not in err
    assert load_state(state_dir).processes["web-1"].status == "running"
    assert not list(recovery.faults_dir(state_dir).glob("*.json"))
    journal = json.loads((out / "experiments" / "web-pause" / "journal.json").read_text())
    assert journal["status"] == "interrupted" and journal["verdict"] == "error"
    assert journal["faults"][0]["rolled_back"] is True


def test_interleaved_windows_toggle_the_fault_and_judge_on_against_off(web_lab, tmp_path):
    state_dir, url = web_lab
    text = EXPERIMENT.format(name="web-toggle", url=url, expect="{}").replace(
        "process.kill", "process.pause").replace("at: 4, for: 3", "at: 3, for: 12").replace(
        "duration: 12", "duration: 19").replace(
        "control: {min_samples: 20}",
        "control: {mode: interleaved, window_seconds: 2, skip_seconds: 0, min_samples: 10}")
    exp = parse_experiment(text, path="web-toggle.yaml")
    j = run_experiments([exp], EngineOptions(state_dir=state_dir, out_dir=tmp_path / "run", seed=5,
                                             handle_signals=False))[0]
    assert j["status"] == "completed", j["errors"]
    assert [f["id"] for f in j["faults"]] == ["f1@1", "f1@2", "f1@3"]
    assert all(f["rolled_back"] for f in j["faults"])
    starts = [f["start"] - j["t0"] for f in j["faults"]]     # the first waits for the "before" probes
    assert starts[0] >= 3 and [b - a for a, b in zip(starts, starts[1:])] == pytest.approx([4, 4], abs=0.6)
    judged = j["judgement"]
    assert judged["mode"] == "interleaved" and judged["cycles"] == 3
    latency = next(m for m in judged["metrics"] if m["metric"] == "latency_ms")
    assert latency["n_experiment"] >= 5 and latency["n_control"] >= 5
    assert latency["harmful"] is True and latency["p_value"] < 0.05 and latency["rank_biserial"] > 0.9
    assert judged["few_samples"] is True and any("few samples" in w for w in judged["warnings"])
    assert load_state(state_dir).processes["web-1"].status == "running"
    assert not list(recovery.faults_dir(state_dir).glob("*.json"))
