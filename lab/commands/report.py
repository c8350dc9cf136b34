"""``nines report [RUN_DIR] [--previous DIR]``: build the report of a run and print its paths.

Without RUN_DIR the newest run under ./runs is used; without --previous the newest older
sibling run (if any) is compared against. matplotlib is imported only here, on use.
"""
from __future__ import annotations

from pathlib import Path

import click

from lab.errors import UsageError

DEFAULT_RUNS = Path("runs")


@click.command()
@click.argument("run_dir", required=False, type=click.Path(path_type=Path))
@click.option("--previous", type=click.Path(path_type=Path), default=None,
              help="Run directory to compare against (default: the newest older sibling run).")
@click.option("--no-previous", is_flag=True, help="Do not compare against any previous run.")
def report(run_dir: Path | None, previous: Path | None, no_previous: bool) -> None:
    """Build RUN_DIR/report/: report.html, summary.md, results.json, junit.xml and plots."""
    import time

    from reports.build import build_report
    from reports.loader import is_run_dir
    if run_dir is None:
        run_dir = newest_run(DEFAULT_RUNS)
    if previous is not None and no_previous:
        raise UsageError("--previous and --no-previous contradict each other; pass one of them.")
    if previous is not None and not is_run_dir(previous):
        raise UsageError(f"--previous {previous} is not a run directory: no run.json, experiments/ "
                         f"or sim/result.json in it.")
    click.echo(f"building the report of {run_dir} ...", err=True)
    started = time.perf_counter()
    paths = build_report(run_dir, previous=previous, compare_with_siblings=not no_previous)
    for name, path in paths.items():
        if not name.startswith("plot:"):
            click.echo(f"{name:13} {path}")
    plots = [p for n, p in paths.items() if n.startswith("plot:")]
    if plots:
        click.echo(f"{'plots':13} {plots[0].parent} ({len(plots)} PNG)")
    click.echo(f"built in {time.perf_counter() - started:.1f} s", err=True)


def newest_run(runs: Path) -> Path:
    """The run under ``runs`` that started last (run.json's started_at, else its records' mtime)."""
    from reports.loader import is_run_dir, run_started_at

    if not runs.is_dir():
        raise UsageError(f"no RUN_DIR given and there is no {runs}/ directory here; pass the run "
                         f"directory, e.g. `nines report runs/<name>`.")
    candidates = [p for p in runs.iterdir() if is_run_dir(p)]
    if not candidates:
        raise UsageError(f"no RUN_DIR given and {runs}/ holds no run directory; pass one, e.g. "
                         f"`nines report runs/<name>`.")
    return max(candidates, key=lambda p: (run_started_at(p), p.name))
