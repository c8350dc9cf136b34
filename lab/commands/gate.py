"""``nines gate [RUN_DIR]``: the run's journals and simulation result as one exit code for CI.

Exit codes (docs/gate.md): 0 pass, 10 budget at risk, 11 hypothesis deviated, 12 invariant
violated, 20 lab or infrastructure error, 2 usage error. Needs no report: it reads
``experiments/*/journal.json`` and ``sim/result.json`` itself.
"""
from __future__ import annotations

import json
from pathlib import Path

import click

from lab.errors import UsageError


def latest_run(root: Path = Path("runs")) -> Path:
    runs = sorted((p for p in root.glob("*") if p.is_dir()), key=lambda p: p.stat().st_mtime) if root.is_dir() else []
    if not runs:
        raise UsageError("no RUN_DIR given and no run under ./runs; pass the directory `nines run` wrote")
    return runs[-1]


@click.command()
@click.argument("run_dir", required=False, type=click.Path(path_type=Path))
@click.option("--budget-minutes", type=click.FloatRange(min=0, min_open=True), default=52.56, show_default=True,
              help="Yearly downtime budget (99.99 %: 52.56).")
@click.option("--threshold", type=click.FloatRange(0, 1), default=0.05, show_default=True,
              help="Highest acceptable P(yearly downtime > budget) from the simulation.")
@click.option("--min-score", type=click.FloatRange(0, 100), default=None,
              help="Fail (budget at risk) when the overall score is below this.")
@click.option("--max-burn", "max_burn", type=click.FloatRange(min=0), default=None,
              help="Fail (budget at risk) when the experiments together burned more budget-minutes.")
@click.option("--require-sim", is_flag=True, help="A missing simulation result is a lab error.")
@click.option("--junit", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Also write JUnit XML here.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def gate(run_dir: Path | None, budget_minutes: float, threshold: float, min_score: float | None,
         max_burn: float | None, require_sim: bool, junit: Path | None, as_json: bool) -> int:
    """Exit 0 when the run passes; 10/11/12/20 name what failed (docs/gate.md)."""
    from chaos.gate import gate_run
    from chaos.junit import write_junit

    directory = run_dir or latest_run()
    result = gate_run(directory, budget_minutes=budget_minutes, threshold=threshold, min_score=min_score,
                      max_burn_minutes=max_burn, require_sim=require_sim)
    if junit:
        write_junit(result, junit)
    if as_json:
        click.echo(json.dumps(result.to_json(), indent=2))
    else:
        s = result.scores
        colour = "green" if result.code == 0 else ("yellow" if result.code in (10, 11) else "red")
        click.secho(f"gate: {result.code.name.lower()} (exit {int(result.code)})", fg=colour, bold=True)
        if s.get("score") is not None:
            click.echo(f"  score {s['score']:.2f} (Litmus-style {s['litmus_resilience_score']:.2f}) over "
                       f"{s['experiments']} experiments, {s['budget_minutes_burned']:g} budget-minutes burned")
        for reason in result.reasons:
            click.echo(f"  - {reason}")
        for note in result.notes:
            click.echo(f"  note: {note}")
    return result.code
