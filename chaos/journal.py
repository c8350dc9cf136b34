"""The experiment journal (``nineslab.journal/1``, contracts §3): one self-describing JSON record
per experiment run — inputs, seed, versions, fault timeline, SLIs, measurements, hypothesis,
invariants, verdict and score. Reports, calibration and the gate read only this.
"""
from __future__ import annotations

import json
import os
import platform
import tempfile
from importlib import metadata
from pathlib import Path
from typing import Any

SCHEMA = "nineslab.journal/1"


def versions() -> dict[str, str]:
    out = {"python": platform.python_version(), "platform": platform.platform()}
    for dist in ("nineslab", "locust", "scipy", "numpy"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            pass
    return out


def empty_analysis() -> dict:
    return {"slis": {"before": {}, "during": {}, "after": {}, "per_second": []}, "measurements": [],
            "downtime_seconds": 0.0, "budget_minutes_burned": 0.0,
            "hypothesis": {"before": {"met": False, "probes": []}, "during": [], "after": {"met": False, "probes": []}},
            "judgement": None, "verdict": "error", "reasons": [], "score": 0.0}


def build(exp: Any, *, seed: int, started_at: float, ended_at: float, t0: float | None, status: str,
          timeline: list[dict], analysis: dict, invariants: list[dict], errors: list[str],
          load: dict | None = None, healed: list[str] | None = None, rollbacks: list[dict] | None = None,
          aborted_reason: str | None = None, actions: list[dict] | None = None) -> dict:
    journal = {
        "schema": SCHEMA,
        "experiment": {"name": exp.name, "title": exp.title, "description": exp.description, "tags": exp.tags,
                       "file": str(Path(exp.file).resolve()) if exp.file else None, "source": exp.source},
        "seed": seed, "versions": versions(),
        "started_at": started_at, "ended_at": ended_at, "duration_seconds": round(ended_at - started_at, 3),
        "t0": t0, "status": status, "weight": exp.weight,
        "faults": [{k: v for k, v in f.items() if k != "_applied"} for f in timeline],
        "actions": actions or [],
        "load": load,
        **{k: analysis[k] for k in ("slis", "measurements", "downtime_seconds", "budget_minutes_burned",
                                     "hypothesis", "judgement")},
        "invariants": invariants,
        "verdict": analysis["verdict"], "reasons": analysis["reasons"], "score": analysis["score"],
        "aborted_reason": aborted_reason, "healed_before": healed or [], "rollbacks": rollbacks or [],
        "errors": errors,
    }
    return journal


def write(journal: dict, path: str | Path) -> Path:
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".journal-", suffix=".json", dir=p.parent)
    with os.fdopen(fd, "w") as fh:
        json.dump(journal, fh, indent=2, default=str)
        fh.write("\n")
    os.replace(tmp, p)
    return p


def read(path: str | Path) -> dict:
    return json.loads(Path(path).read_text())
