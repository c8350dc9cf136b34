"""``nines run``: the main job — up, the profile's experiments under load, calibration and
simulation, report, gate, down — in one run directory. Exits with the gate's code
(docs/gate.md), 20 when a step failed, 130 when interrupted.
"""
from __future__ import annotations

import time
from pathlib import Path

import click


@click.command()
@click.option("--profile", type=click.Choice(["quick", "full"]), default="quick", show_default=True,
              help="quick: one chat server a region and the short experiments (CI); full: everything.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Run directory [default: runs/<profile>-<time>].")
@click.option("--seed", type=int, default=1, show_default=True)
@click.option("--state-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Lab state directory [default: $NINES_STATE_DIR, else ./.nines].")
@click.option("--runtime", type=click.Choice(["local", "docker"]), default="local", show_default=True)
@click.option("--topology", "topology_file", type=click.Path(dir_okay=False, exists=True, path_type=Path),
              default=None, help="A topology file instead of the packaged one.")
@click.option("--experiment", "experiments", multiple=True,
              help="Run only these experiments (names or files; repeatable) instead of the profile's.")
@click.option("--years", type=click.IntRange(min=1), default=None, help="Simulated years [quick 5000, full 100000].")
@click.option("--min-score", type=click.FloatRange(0, 100), default=None, help="Gate: lowest acceptable score.")
@click.option("--time-scale", type=click.FloatRange(0.1, 10), default=1.0, show_default=True,
              help="Run every experiment's schedule this many times as long (0.5 halves it; criteria stay).")
def run(profile: str, out_dir: Path | None, seed: int, state_dir: Path | None, runtime: str,
        topology_file: Path | None, experiments: tuple[str, ...], years: int | None, min_score: float | None,
        time_scale: float) -> int:
    """The main job: up, experiments under load, calibrate and simulate, report, gate, down."""
    from chaos.experiment import load_experiment, resolve
    from chaos.main_job import MainJobOptions, run_main_job
    from chaos.progress import ProgressView
    from lab.commands.infra import resolve_state_dir

    chosen = [load_experiment(resolve(e)) for e in experiments] or None
    out = out_dir or Path("runs") / time.strftime(f"{profile}-%Y%m%d-%H%M%S")
    began = time.monotonic()
    with ProgressView() as view:
        record = run_main_job(MainJobOptions(
            profile=profile, out_dir=out, state_dir=resolve_state_dir(state_dir), seed=seed, runtime=runtime,
            topology_file=topology_file, experiments=chosen, sim_years=years, min_score=min_score,
            time_scale=time_scale,
            say=lambda line: view.console.print(line, markup=False, highlight=False), on_update=view.update))
    g = record["gate"]
    click.echo(f"run {record['status']} in {time.monotonic() - began:.0f} s: "
               f"{len(record['experiments'])} experiments -> {record['run_dir']}")
    for e in record["experiments"]:
        click.echo(f"  {e['verdict']:<18} {e['name']}  score {e.get('score', 0):g}  "
                   f"downtime {e.get('downtime_seconds', '-')} s")
    click.echo(f"gate: {g['result']} (exit {g['exit_code']})")
    for reason in g["reasons"]:
        click.echo(f"  - {reason}")
    return g["exit_code"]
