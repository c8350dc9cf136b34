"""The main job records every step and still ends with a run.json and a gate when a step fails."""
from __future__ import annotations

import json

from chaos.main_job import MainJobOptions, run_main_job
from lab.errors import ExitCode


def test_a_job_whose_lab_cannot_start_still_leaves_a_record(tmp_path):
    bad = tmp_path / "topology.yaml"
    bad.write_text("schema: nineslab.topology/1\nregions: nope\n")      # fails before anything starts
    record = run_main_job(MainJobOptions(profile="quick", out_dir=tmp_path / "run", state_dir=tmp_path / "lab",
                                         topology_file=bad, sim_years=100, say=lambda line: None))
    on_disk = json.loads((tmp_path / "run" / "run.json").read_text())
    assert on_disk["schema"] == "nineslab.run/1" and on_disk["status"] == "failed"
    steps = {s["name"]: s for s in on_disk["steps"]}
    assert steps["up"]["status"] == "failed" and "topology.yaml" in steps["up"]["error"]
    assert "down" not in steps                               # nothing was started, nothing to stop
    assert {"simulate", "report"} <= set(steps)
    assert record["gate"]["exit_code"] == ExitCode.LAB_ERROR
    assert json.loads((tmp_path / "run" / "gate.json").read_text())["exit_code"] == 20
    assert on_disk["planned"] and on_disk["experiments"] == []
