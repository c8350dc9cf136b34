"""``nines sim``: project a year of downtime against the error budget, validate model files.

A thin shell around :func:`sim.run_simulation`: parse flags, show progress, print the
summary, write the result JSON.  Mistakes become one sentence and exit code 2.
"""
from __future__ import annotations

import sys

import click

from lab.errors import ExitCode, UsageError

DEFAULT_YEARS = {"fast": 100_000, "simpy": 20_000, "simpy-full": 2_000}


def _parse_sets(pairs: tuple[str, ...]) -> dict[str, str]:
    out: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"--set {pair!r}: write KEY=VALUE, e.g. --set router.check_interval=10s")
        out[key.strip()] = value.strip()
    return out


@click.group()
def sim() -> None:
    """Simulation: Monte Carlo of the topology against the 99.99 % error budget."""


@sim.command("run")
@click.option("--model", "model_path", type=click.Path(dir_okay=False), default=None,
              help="Model file (YAML); default: the reference model of the lab.")
@click.option("--years", type=int, default=None,
              help="Simulated years (the cap when --precision is given); default 100000 (fast) or 5000 (simpy).")
@click.option("--seed", type=int, default=1, show_default=True, help="Seed of every random stream.")
@click.option("--calibrate", "calibrate", multiple=True, metavar="RUN_DIR",
              help="Run directory whose experiments/*/journal.json calibrate the model (repeatable).")
@click.argument("more_run_dirs", nargs=-1, metavar="[RUN_DIR]...")
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE",
              help="What-if override, e.g. router.check_interval=10s or region_outage.rate=2/yr (repeatable).")
@click.option("--regions", type=int, default=None, help="What-if: keep only the first N regions.")
@click.option("--engine", type=click.Choice(["simpy", "fast", "auto", "simpy-full"]), default="auto",
              show_default=True, help="simpy-full runs every event through SimPy (the cross-check).")
@click.option("--precision", type=float, default=None,
              help="Stop when the 95 % interval of P(D > budget) is within +- this (e.g. 0.002).")
@click.option("--workers", type=int, default=None, help="Worker processes (default: all cores).")
@click.option("--no-sensitivities", is_flag=True, help="Skip the tornado of parameter sensitivities.")
@click.option("--threshold", type=float, default=0.05, show_default=True,
              help="Gate threshold on the upper bound of P(D > budget).")
@click.option("--out", type=click.Path(dir_okay=False), default="sim-result.json", show_default=True,
              help="Where to write the nineslab.sim/1 result JSON.")
@click.option("--fail-on-gate", is_flag=True,
              help="Exit with code 10 (budget at risk) when the projection fails the gate.")
def run(model_path, years, seed, calibrate, more_run_dirs, sets, regions, engine, precision, workers,
        no_sensitivities, threshold, out, fail_on_gate) -> int:
    """Simulate years of the topology and project downtime against the budget."""
    from sim import write_result
    from sim.result import summary_lines
    from sim.simulation import run_simulation, pick_engine

    if more_run_dirs and not calibrate:
        raise UsageError(f"unexpected argument {more_run_dirs[0]!r}; run directories follow --calibrate")
    overrides = _parse_sets(sets)
    if years is None:
        years = DEFAULT_YEARS[pick_engine(model_path, overrides=overrides, regions=regions, engine=engine)]
    result = _with_progress(years, lambda progress: run_simulation(
        model_path, years=years, seed=seed, calibrate=[*calibrate, *more_run_dirs], overrides=overrides,
        regions=regions, engine=engine, precision=precision, workers=workers, progress=progress,
        sensitivities=not no_sensitivities, threshold=threshold))
    path = write_result(result, out)
    for line in summary_lines(result):
        click.echo(line)
    click.echo(f"result: {path}")
    if fail_on_gate and not result["gate"]["passed"]:
        return int(ExitCode.BUDGET_AT_RISK)
    return 0


def _with_progress(total_years: int, work):
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    console = Console(stderr=True)
    if not console.is_terminal:
        return work(None)
    with Progress(TextColumn("simulating"), BarColumn(), TextColumn("{task.completed:,}/{task.total:,} years"),
                  TimeRemainingColumn(), console=console, transient=True) as bar:
        task = bar.add_task("sim", total=total_years)

        def progress(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)
        return work(progress)


@sim.command("validate")
@click.argument("file", type=click.Path(dir_okay=False))
def validate(file) -> int:
    """Check a model file; print what it describes."""
    from sim.engine_fast import unsupported
    from sim.model import load_model
    from sim.topology import Topology

    loaded = load_model(file)
    model = loaded.model
    reasons = unsupported(Topology(model))
    click.echo(f"{file}: valid model {model.name!r}: {len(model.regions)} region(s), "
               f"{len(model.groups)} group(s), {len(model.failure_modes)} failure mode(s), "
               f"budget {model.budget_minutes:g} min/yr; "
               + ("fast engine supported" if not reasons else "SimPy engine only (" + "; ".join(reasons) + ")"))
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(sim())
