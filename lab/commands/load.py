"""``nines load``: Locust headless against the lab, open or closed model, and capacity search.

The CLI process never imports Locust: :mod:`loadtests.runner` runs it in child processes.

    nines load run --scenario chat --rate 50 --duration 30 --out runs/chat
    nines load run --scenario chat --users 20 --duration 30           # closed model
    nines load capacity --scenario migration --slo-p99 200
"""
from __future__ import annotations

import json
from pathlib import Path

import click

from lab.errors import ExitCode

SHAPE_HELP = ("Arrival shape: constant, poisson, step[:every=S,by=R], spike[:at=S,for=S,factor=F], "
              "diurnal[:period=S,amplitude=A]; add poisson=1 for Poisson arrivals.")


@click.group()
def load() -> None:
    """Load from Locust users: open model without coordinated omission, samples, ledger."""


def _scenario(name: str):
    from loadtests.scenarios import get_scenario

    return get_scenario(name)


def _echo(line: str) -> None:
    click.echo(line, err=True)


@load.command("run")
@click.option("--scenario", required=True, help="trivial, chat, analytics, migration or mixed.")
@click.option("--rate", type=float, default=None, help="Open model: arrivals per second (all processes).")
@click.option("--users", type=int, default=None, help="Closed model: users looping with think time.")
@click.option("--duration", type=float, required=True, help="Seconds of load.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Run directory (default ./load-<scenario>).")
@click.option("--seed", type=int, default=1, show_default=True, help="Seed of arrivals and user choices.")
@click.option("--state-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Lab state directory (default $NINES_STATE_DIR or ./.nines).")
@click.option("--shape", default="constant", show_default=True, help=SHAPE_HELP)
@click.option("--concurrency", type=int, default=None,
              help="Open model: users in the pool (most operations in flight); default per scenario.")
@click.option("--workers", type=int, default=1, show_default=True,
              help="Locust worker processes (master/worker mode when more than 1).")
@click.option("--host", default=None, help="Target for HTTP users (the trivial scenario needs it).")
@click.option("--max-lateness", type=float, default=5.0, show_default=True,
              help="Seconds an arrival may start late before it counts as dropped.")
@click.option("--timeout", type=float, default=10.0, show_default=True, help="Seconds before a request fails.")
@click.option("--run-id", default=None,
              help="Token in every user name (1-16 letters and digits; default: a fresh one). Reusing one "
                   "makes this run's users those of the earlier run, with their history.")
@click.option("--json", "as_json", is_flag=True, help="Print load.json to stdout.")
def run_cmd(scenario: str, rate: float | None, users: int | None, duration: float, out_dir: Path | None,
            seed: int, state_dir: Path | None, shape: str, concurrency: int | None, workers: int,
            host: str | None, max_lateness: float, timeout: float, run_id: str | None, as_json: bool) -> int:
    """Run SCENARIO headless in Locust child processes; write samples, ledger and load.json."""
    from loadtests.runner import RunConfig, run

    cfg = RunConfig(scenario=_scenario(scenario), duration=duration, rate=rate, users=users,
                    out=out_dir or Path(f"load-{scenario}"), concurrency=concurrency, shape=shape,
                    seed=seed, workers=workers, state_dir=state_dir, host=host,
                    max_lateness=max_lateness, timeout=timeout, run_id=run_id)
    doc = run(cfg, progress=_echo)
    _echo(_verdict_line(doc))
    if as_json:
        click.echo(json.dumps(doc, indent=2))
    if doc["status"] == "interrupted":
        return ExitCode.INTERRUPTED
    if doc["status"] != "completed":
        return ExitCode.LAB_ERROR
    return ExitCode.OK


def _verdict_line(doc: dict) -> str:
    c = doc["counts"]
    lat = doc["latency_ms"]
    line = (f"load: {doc['status']}: {c['ok']} ok, {c['error']} errors, {c['dropped']} dropped "
            f"of {c['intended']}; {doc['rps']:g} req/s; p50 {lat['corrected'].get('p50_ms', '-')} ms, "
            f"p99 {lat['corrected'].get('p99_ms', '-')} ms (raw p99 {lat['raw'].get('p99_ms', '-')} ms)")
    if not doc["valid"]:
        line += "; INVALID: " + "; ".join(doc["generator"]["reasons"])
    return line


@load.command("capacity")
@click.option("--scenario", required=True, help="trivial, chat, analytics, migration or mixed.")
@click.option("--slo-p99", type=float, required=True, help="The p99 latency objective in milliseconds.")
@click.option("--max-error-rate", type=float, default=0.01, show_default=True,
              help="Highest share of errors and drops a sustained rate may have.")
@click.option("--start-rate", type=float, default=None, help="First rate tried (default: the scenario's).")
@click.option("--max-rate", type=float, default=100000.0, show_default=True, help="Never try above this.")
@click.option("--factor", type=float, default=1.5, show_default=True, help="Growth of the rate per step.")
@click.option("--step-duration", type=float, default=10.0, show_default=True, help="Seconds per step.")
@click.option("--refine", type=int, default=2, show_default=True, help="Bisection steps at the knee.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Directory for the steps and capacity.json (default ./capacity-<scenario>).")
@click.option("--seed", type=int, default=1, show_default=True)
@click.option("--state-dir", type=click.Path(file_okay=False, path_type=Path), default=None)
@click.option("--concurrency", type=int, default=None)
@click.option("--workers", type=int, default=1, show_default=True)
@click.option("--host", default=None, help="Target for HTTP users (the trivial scenario needs it).")
def capacity_cmd(scenario: str, slo_p99: float, max_error_rate: float, start_rate: float | None,
                 max_rate: float, factor: float, step_duration: float, refine: int, out_dir: Path | None,
                 seed: int, state_dir: Path | None, concurrency: int | None, workers: int,
                 host: str | None) -> int:
    """Find the highest arrival rate SCENARIO sustains within the p99 SLO; write capacity.json."""
    from loadtests.capacity import SearchPolicy, search
    from loadtests.runner import RunConfig

    sc = _scenario(scenario)
    out = out_dir or Path(f"capacity-{scenario}")
    policy = SearchPolicy(slo_p99_ms=slo_p99, max_error_rate=max_error_rate,
                          start_rate=start_rate or sc.rate, max_rate=max_rate, factor=factor, refine=refine)
    template = RunConfig(scenario=sc, duration=step_duration, out=out, rate=policy.start_rate,
                         concurrency=concurrency, seed=seed, workers=workers, state_dir=state_dir, host=host)
    result = search(policy, template, progress=_echo)
    _echo(f"capacity: {scenario} sustains {result['capacity_rps']:g} req/s within p99 <= {slo_p99:g} ms "
          f"({result['reason']}); written to {result['file']}")
    return ExitCode.OK
