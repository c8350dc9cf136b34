"""``nines chaos``: list, validate and run chaos experiments.

    nines chaos list [--profile quick]
    nines chaos validate FILE...
    nines chaos run FILE-OR-NAME... [--out DIR] [--seed N] [--state-dir D] [--time-scale F]

``run`` exits with the gate's codes over the experiments it ran (docs/gate.md): 0 all
passed, 11 a hypothesis deviated, 12 an invariant was violated, 20 the lab failed.
"""
from __future__ import annotations

import time
from pathlib import Path

import click

from lab.errors import ExitCode


@click.group()
def chaos() -> None:
    """Chaos experiments: faults under load, measured against a steady-state hypothesis."""


@chaos.command("list")
@click.option("--profile", type=click.Choice(["quick", "full"]), default=None,
              help="Only the experiments `nines run --profile P` runs.")
def list_cmd(profile: str | None) -> int:
    """The experiments of the library (chaos/experiments)."""
    from chaos.experiment import library

    for exp in library(profile):
        faults = ", ".join(f"{f.kind} {','.join(f.targets)}" for f in exp.faults) or "no faults"
        click.echo(f"{exp.name:<28} {exp.load.duration:>4g}s  [{','.join(exp.profiles)}]  {exp.title} — {faults}")
    return ExitCode.OK


@chaos.command()
@click.argument("files", nargs=-1, required=True)
def validate(files: tuple[str, ...]) -> int:
    """Check experiment files; errors name the file, line and key."""
    from chaos.experiment import load_experiment, resolve

    for name in files:
        exp = load_experiment(resolve(name))
        click.echo(f"{exp.file}: ok ({exp.name}: {len(exp.faults)} faults, "
                   f"{len(exp.hypothesis.probes)} probes, {exp.load.duration:g} s of {exp.load.scenario} load)")
    return ExitCode.OK


@chaos.command()
@click.argument("files", nargs=-1, required=True)
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Run directory [default: runs/chaos-<time>].")
@click.option("--seed", type=int, default=1, show_default=True, help="Seed of the load (same seed, same arrivals).")
@click.option("--state-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Lab state directory [default: $NINES_STATE_DIR, else ./.nines].")
@click.option("--time-scale", type=click.FloatRange(0.1, 10), default=1.0, show_default=True,
              help="Run every experiment's schedule this many times as long (0.5 halves it; criteria stay).")
def run(files: tuple[str, ...], out_dir: Path | None, seed: int, state_dir: Path | None, time_scale: float) -> int:
    """Run experiments against the running lab; write a journal per experiment."""
    from chaos.engine import EngineOptions, run_experiments
    from chaos.experiment import load_experiment, resolve
    from chaos.gate import evaluate
    from chaos.progress import ProgressView
    from lab.commands.infra import resolve_state_dir

    experiments = [load_experiment(resolve(f)) for f in files]
    out = (out_dir or Path("runs") / time.strftime("chaos-%Y%m%d-%H%M%S")).resolve()
    with ProgressView() as view:
        opts = EngineOptions(state_dir=resolve_state_dir(state_dir), out_dir=out, seed=seed, on_update=view.update,
                             time_scale=time_scale)
        journals = run_experiments(experiments, opts)
    for j in journals:
        click.echo(summary_line(j))
    click.echo(f"journals in {out / 'experiments'}")
    return evaluate(journals, [], None).code


def summary_line(j: dict) -> str:
    colour = {"passed": "green", "deviated": "yellow"}.get(j["verdict"], "red")
    ms = "; ".join(f"{m['fault_id']}: detect {_s(m['detection_seconds'])}, recover {_s(m['recovery_seconds'])}, "
                   f"down {m['downtime_seconds']:g} s" for m in j.get("measurements", []))
    line = (f"{click.style(j['verdict'].upper(), fg=colour)} {j['experiment']['name']}: score {j['score']:g}, "
            f"downtime {j['downtime_seconds']:g} s ({j['budget_minutes_burned']:g} budget-min)"
            + (f" — {ms}" if ms else ""))
    for reason in j.get("reasons", [])[:5]:
        line += f"\n    {reason}"
    return line


def _s(x: float | None) -> str:
    return "never" if x is None else f"{x:g} s"
