"""Build the report of a run directory: the thin I/O shell around load → summarise → draw → render.

:func:`build_report` writes RUN_DIR/report/{report.html, summary.md, results.json,
junit.xml, plots/*.png} and returns their paths. It never raises on missing or partial
inputs — the report says what is missing and why — only on a RUN_DIR that is not a run
directory at all (:class:`lab.errors.UsageError`) or one it cannot write into.
"""
from __future__ import annotations

import dataclasses
import json
import os
import time
from pathlib import Path
from typing import Any

from lab.errors import UsageError
from reports import html, junit, markdown
from reports.compare import Comparison, compare, find_previous
from reports.figures import draw_all
from reports.loader import load_run
from reports.summary import Summary, summarise

RESULTS_SCHEMA = "nineslab.report/1"


def build_report(run_dir: str | Path, *, previous: str | Path | None = None,
                 compare_with_siblings: bool = True) -> dict[str, Path]:
    """Write RUN_DIR/report/ and return {"report.html": path, ..., "plot:<key>": path}.

    ``previous`` names the run to compare with; without it the newest older sibling run
    under the same parent is used, unless ``compare_with_siblings`` is false.
    """
    started = time.perf_counter()
    view = load_run(run_dir)
    summary = summarise(view)
    comparison = _comparison(view.run_dir, summary, previous, compare_with_siblings)
    plots, gaps = draw_all(view, summary, comparison)

    out = view.run_dir / "report"
    plot_dir = out / "plots"
    try:
        plot_dir.mkdir(parents=True, exist_ok=True)
        for stale in plot_dir.glob("*.png"):
            stale.unlink()
        paths: dict[str, Path] = {}
        for p in plots:
            paths[f"plot:{p.key}"] = _write(plot_dir / p.filename, p.png)
        paths["summary.md"] = _write(out / "summary.md", markdown.render(summary, comparison))
        paths["junit.xml"] = _write(out / "junit.xml", junit.render(summary))
        paths["results.json"] = _write(out / "results.json", json.dumps(
            results(view.sim, view.run, summary, comparison, [dataclasses.asdict(g) for g in gaps],
                    plots=[f"plots/{p.filename}" for p in plots]), indent=1, default=str))
        paths["report.html"] = _write(out / "report.html", html.render(
            summary, plots, gaps, comparison, run_dir=str(view.run_dir),
            build_seconds=time.perf_counter() - started))
    except OSError as exc:
        raise UsageError(f"cannot write the report into {out}: {exc.strerror or exc}; "
                         f"check that RUN_DIR is writable.") from exc
    return paths


def results(sim: dict[str, Any] | None, run: dict[str, Any] | None, summary: Summary,
            comparison: Comparison | None, gaps: list[dict], plots: list[str]) -> dict[str, Any]:
    """The JSON results: the summary the report shows, plus the run record and sim result it read."""
    return {
        "schema": RESULTS_SCHEMA,
        "summary": summary.as_dict(),
        "comparison": None if comparison is None else {
            "previous_run": comparison.previous_run,
            "changes": [dict(dataclasses.asdict(c), delta=c.delta, relative=c.relative)
                        for c in comparison.changes]},
        "plots": plots, "plot_gaps": gaps, "run": run, "sim": sim,
    }


def _comparison(run_dir: Path, summary: Summary, previous: str | Path | None,
                siblings: bool) -> Comparison | None:
    if previous is not None:
        prev_dir = Path(previous)
        prev_view = load_run(prev_dir)       # an explicit --previous that is not a run dir is a usage error
    else:
        prev_dir = find_previous(run_dir) if siblings else None
        if prev_dir is None:
            return None
        prev_view = load_run(prev_dir)
    return compare(summary, summarise(prev_view), prev_dir.name)


def _write(path: Path, content: str | bytes) -> Path:
    """Write atomically, so a reader (or a crash) never sees half a file."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    if isinstance(content, bytes):
        tmp.write_bytes(content)
    else:
        tmp.write_text(content, encoding="utf-8")
    os.replace(tmp, path)
    return path
