"""``nines report`` as a user runs it (subprocess: exit codes, one-sentence errors, no
traceback), and build_report on inputs too odd to trust (never raises)."""
from __future__ import annotations

import json
import subprocess
import sys

from fixtures import write_run
from reports import build_report


def _nines(*args, cwd):
    return subprocess.run([sys.executable, "-m", "lab.cli", "report", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=120)


def test_bad_run_dir_is_one_sentence_and_exit_2(tmp_path):
    (tmp_path / "empty").mkdir()
    r = _nines(str(tmp_path / "empty"), cwd=tmp_path)
    assert r.returncode == 2
    assert "Traceback" not in r.stderr
    assert r.stderr.strip().splitlines()[-1].startswith(f"error: RUN_DIR {tmp_path / 'empty'} is not a run directory")
    r = _nines(cwd=tmp_path)                                   # no ./runs here
    assert r.returncode == 2 and "no RUN_DIR given and there is no runs/ directory" in r.stderr
    assert "Traceback" not in r.stderr


def test_default_is_the_newest_run_under_runs_and_paths_are_printed(tmp_path):
    write_run(tmp_path / "runs" / "old", experiments=["nats-node-pause"], sim=False, rate=5.0, t0=1000.0)
    write_run(tmp_path / "runs" / "new", experiments=["nats-node-pause"], sim=False, rate=5.0, t0=2000.0)
    r = _nines("--previous", str(tmp_path / "nope"), cwd=tmp_path)
    assert r.returncode == 2 and "--previous" in r.stderr and "Traceback" not in r.stderr
    r = _nines(cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "building the report of runs/new" in r.stderr
    out = dict(line.split(None, 1) for line in r.stdout.splitlines())
    assert out["report.html"] == "runs/new/report/report.html"
    assert {"summary.md", "junit.xml", "results.json", "plots"} <= set(out)
    assert "since `old`" in (tmp_path / "runs/new/report/summary.md").read_text()  # identical seeds: nothing moved


def test_odd_inputs_never_raise(tmp_path, monkeypatch):
    from reports.plots import attribution

    def broken(*_a, **_k):
        raise ZeroDivisionError("a bug in a plot")

    monkeypatch.setattr(attribution, "render", broken)
    run = write_run(tmp_path / "run", experiments=["chat-server-crash", "nats-node-pause"], rate=5.0)
    j = run / "experiments" / "chat-server-crash" / "journal.json"
    j.write_text(json.dumps({"schema": "nineslab.journal/1", "faults": "x", "measurements": [1, None],
                             "slis": {"per_second": [{"t": "a"}, 3]}, "invariants": {"a": 1},
                             "hypothesis": [], "score": "high", "errors": [{"message": "boom"}]}))
    (run / "experiments" / "nats-node-pause" / "journal.json").write_text("[1, 2]")
    (run / "experiments" / "nats-node-pause" / "samples.csv").write_text("a,b\n1,2\n")
    (run / "run.json").write_text(json.dumps({"schema": "nineslab.run/1", "experiments": [{"x": 1}, 3],
                                              "errors": ["sim: out of memory"], "status": "failed"}))
    (run / "sim" / "result.json").write_text(json.dumps({
        "schema": "nineslab.sim/1", "downtime_minutes": {"mean": "x", "histogram": {"edges": [0, 1], "counts": [1, 2]}},
        "p_exceed": {"estimate": 0.2}, "attribution": {"a": "x", "b": 2.0}, "sensitivities": [{"parameter": "p"}],
        "monthly": {"mean_burn": ["a"]}, "gate": {"passed": "yes"}}))
    paths = build_report(run)
    md = paths["summary.md"].read_text()
    assert "INCOMPLETE" in md.splitlines()[0]
    assert "holds a JSON list, not an object" in md
    html = paths["report.html"].read_text()
    assert "monthly.mean_burn holds something other than numbers; ignored" in md
    assert "Monthly budget burn-down: not shown — sim/result.json has no monthly.mean_burn" in html
    assert "could not be drawn: ZeroDivisionError: a bug in a plot" in html
    assert "boom" in html
