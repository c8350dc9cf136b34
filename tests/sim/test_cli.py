"""``nines sim`` end to end in a subprocess: the text, the exit code, the JSON, no tracebacks."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from sim_journals import make_run_dir


def nines(*args, cwd=None):
    return subprocess.run([sys.executable, "-c", "from lab.cli import main; main()", *args],
                          capture_output=True, text=True, cwd=cwd, timeout=120)


def test_run_writes_the_result_and_prints_a_summary(tmp_path):
    out = tmp_path / "result.json"
    run_dir = make_run_dir(tmp_path / "run", {"crash": [
        {"failure_mode": "chat_server_crash", "detection_seconds": 11.0, "recovery_seconds": 4.0}]})
    proc = nines("sim", "run", "--years", "1000", "--seed", "2", "--no-sensitivities", "--workers", "1",
                 "--calibrate", str(run_dir), "--set", "router.check_interval=10s", "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    assert "P(blown year)" in proc.stdout and "what-if router.check_interval=10s" in proc.stdout
    result = json.loads(out.read_text())
    assert result["schema"] == "nineslab.sim/1"
    for key in ("model", "engine", "years", "seed", "budget_minutes", "downtime_minutes", "p_exceed",
                "attribution", "monthly", "burn_rate_alerts", "sensitivities", "calibration", "gate"):
        assert key in result
    assert result["years"] == 1000 and result["engine"] == "fast"
    assert len(result["monthly"]["p_exhausted_by_month"]) == 12
    assert result["calibration"]["chat_server_crash.detection"]["source"] == "measured"


@pytest.mark.parametrize("args,message", [
    (("--set", "router.check_intervl=10s"), "unknown --set key 'router.check_intervl' (did you mean 'check_interval'?)"),
    (("--set", "router.check_interval=10q"), "router.check_interval: '10q' is not a duration"),
    (("--set", "nonsense"), "write KEY=VALUE"),
    (("--regions", "5"), "the model has 3 region(s)"),
    (("--calibrate", "/nonexistent/run"), "no such directory"),
])
def test_bad_input_is_one_sentence_and_exit_2(args, message, tmp_path):
    proc = nines("sim", "run", "--years", "10", "--out", str(tmp_path / "r.json"), *args)
    assert proc.returncode == 2
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr


def test_validate(tmp_path):
    proc = nines("sim", "validate", "sim/models/reference.yaml")
    assert proc.returncode == 0 and "valid model 'reference'" in proc.stdout
    bad = tmp_path / "bad.yaml"
    bad.write_text("regions: [\n")
    proc = nines("sim", "validate", str(bad))
    assert proc.returncode == 2 and "not valid YAML" in proc.stderr and "Traceback" not in proc.stderr
    wrong = tmp_path / "wrong.yaml"
    wrong.write_text("regions: {r: {traffic_share: 1}}\ngroups: {g: {n: 1, k: 2}}\n"
                     "failure_modes: {x: {group: g, rate: 1, duration: 1h}}\n")
    proc = nines("sim", "validate", str(wrong))
    assert proc.returncode == 2 and "groups.g: k=2 exceeds n=1" in proc.stderr
