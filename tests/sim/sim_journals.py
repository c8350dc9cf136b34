"""A small generator of ``nineslab.journal/1`` experiment journals for calibration tests."""
from __future__ import annotations

import json
from pathlib import Path


def journal(name: str, measurements: list[dict], *, seed: int = 1) -> dict:
    """A minimal but contract-shaped journal with the given measurements."""
    faults = [{"id": f"f{i + 1}", "kind": "process.kill", "target": "chat-us-east-1",
               "failure_mode": m["failure_mode"], "start": 10.0 * i, "end": 10.0 * i + 5.0,
               "rolled_back": True} for i, m in enumerate(measurements)]
    full = []
    for i, m in enumerate(measurements):
        row = {"fault_id": f"f{i + 1}", "detection_seconds": None, "failover_seconds": None,
               "recovery_seconds": None, "downtime_seconds": None, "error_rate_during": None}
        row.update(m)
        full.append(row)
    downtime = sum(m.get("downtime_seconds") or 0.0 for m in full)
    return {
        "schema": "nineslab.journal/1",
        "experiment": {"name": name, "title": name, "tags": [], "file": f"{name}.yaml", "source": {}},
        "seed": seed, "versions": {"nineslab": "0.1.0"}, "started_at": 0.0, "ended_at": 60.0,
        "duration_seconds": 60.0, "status": "completed", "faults": faults,
        "slis": {"before": {}, "during": {}, "after": {}, "per_second": []},
        "measurements": full, "downtime_seconds": downtime,
        "budget_minutes_burned": downtime / 60.0,
        "hypothesis": {"before": {"met": True, "probes": []}, "during": [], "after": {"met": True, "probes": []}},
        "invariants": [], "verdict": "passed", "score": 100.0, "errors": [],
    }


def make_run_dir(root: Path, experiments: dict[str, list[dict]]) -> Path:
    """Write RUN_DIR/experiments/<name>/journal.json for each experiment; return RUN_DIR."""
    root.mkdir(parents=True, exist_ok=True)
    for name, measurements in experiments.items():
        exp = root / "experiments" / name
        exp.mkdir(parents=True, exist_ok=True)
        (exp / "journal.json").write_text(json.dumps(journal(name, measurements), indent=1))
    return root
