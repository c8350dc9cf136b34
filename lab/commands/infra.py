"""``nines up``, ``nines status``, ``nines down``: start, inspect and stop the lab.

The shell only: it resolves configuration (flag, then environment variable, then default),
calls the runtime and prints. ``--state-dir`` falls back to ``$NINES_STATE_DIR``, then
``./.nines``; ``TOXIPROXY_URL`` names a fault proxy to use instead of starting one.
"""
from __future__ import annotations

import json
import os
import signal
import sys
import time
from pathlib import Path

import click

from lab.errors import ExitCode

DEFAULT_STATE_DIR = ".nines"
PROFILES = ("quick", "full")

state_dir_option = click.option(
    "--state-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
    help="Where the lab keeps its state, data and logs [default: $NINES_STATE_DIR, else ./.nines].")


def resolve_state_dir(flag: Path | None) -> Path:
    return (flag or Path(os.environ.get("NINES_STATE_DIR") or DEFAULT_STATE_DIR)).resolve()


_STARTED = time.monotonic()


def _echo(message: str) -> None:
    click.echo(f"[{time.monotonic() - _STARTED:5.1f}s] {message}", err=True)


def _raise_interrupt(signum, frame):  # SIGTERM during up: clean up as for Ctrl-C
    raise KeyboardInterrupt


@click.command()
@click.option("--runtime", type=click.Choice(["local", "docker"]), default="local", show_default=True,
              help="Run the topology as local processes or with docker compose.")
@click.option("--profile", type=click.Choice(PROFILES), default="quick", show_default=True,
              help="quick: one chat server a region; full: two.")
@click.option("--topology", "topology_file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="A topology file instead of the packaged lab/topology.yaml.")
@click.option("--keep-streams", is_flag=True,
              help="Keep JetStream streams from the last run (PostgreSQL data is always kept).")
@state_dir_option
def up(runtime: str, profile: str, topology_file: Path | None, keep_streams: bool, state_dir: Path | None) -> int:
    """Start the topology on 127.0.0.1 and print its endpoints."""
    from lab.runtime import LabConfig, get_runtime

    chosen = get_runtime(runtime)
    proxy_url = None
    try:
        from chaos.proxy.launch import external_url
        proxy_url = external_url(os.environ)
    except ModuleNotFoundError:
        pass
    config = LabConfig(state_dir=resolve_state_dir(state_dir), profile=profile, runtime=runtime,
                       topology_file=topology_file, proxy_url=proxy_url, keep_streams=keep_streams)
    global _STARTED
    _STARTED = time.monotonic()
    previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        result = chosen.up(config, _echo)
    finally:
        signal.signal(signal.SIGTERM, previous)
    if not result.started:
        click.echo(f"a lab is already running in {config.state_dir} (profile {result.state.profile}); "
                   "nothing changed — `nines down` stops it")
        return ExitCode.OK
    state = result.state
    for name, url in state.endpoints.items():
        click.echo(f"{name:<18} {url}")
    if state.proxy:
        click.echo(f"{'fault proxy':<18} {state.proxy.api} ({len(state.links)} links)")
    click.echo(f"lab up in {result.seconds:.1f} s: {len(state.processes)} processes, profile {profile}, "
               f"state {config.state_dir / 'state.json'}")
    return ExitCode.OK


def status_rows(state, healthy: dict[str, bool]) -> list[dict]:
    return [{"name": r.name, "role": r.role, "region": r.region, "pid": r.pid, "ports": r.ports,
             "status": r.status, "healthy": healthy.get(r.name, False)} for r in state.processes.values()]


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@state_dir_option
def status(as_json: bool, state_dir: Path | None) -> int:
    """What runs, where, and whether each part answers a live check (exit 20 when one does not)."""
    from lab.runtime import get_runtime
    from lab.state import find_state

    directory = resolve_state_dir(state_dir)
    state = find_state(directory)
    if state is None:
        if as_json:
            click.echo(json.dumps({"state_dir": str(directory), "running": False, "processes": []}))
        else:
            click.echo(f"no lab is running in {directory}; start one with `nines up`")
        return ExitCode.OK
    rows = status_rows(state, get_runtime(state.runtime).health(state))
    all_healthy = all(row["healthy"] for row in rows)
    if as_json:
        click.echo(json.dumps({"state_dir": str(directory), "running": True, "profile": state.profile,
                               "runtime": state.runtime, "healthy": all_healthy, "processes": rows,
                               "endpoints": state.endpoints,
                               "proxy": state.proxy.model_dump() if state.proxy else None}, indent=2))
    else:
        from rich.console import Console
        from rich.table import Table

        table = Table(title=f"nineslab {state.profile} ({state.runtime}) — {directory}")
        for column in ("name", "role", "region", "pid", "ports", "status", "healthy"):
            table.add_column(column)
        for row in rows:
            ports = " ".join(f"{k}={v}" for k, v in row["ports"].items())
            mark = "[green]yes[/green]" if row["healthy"] else "[red]no[/red]"
            table.add_row(row["name"], row["role"], row["region"] or "-", str(row["pid"] or "-"), ports,
                          row["status"], mark)
        Console(width=None if sys.stdout.isatty() else 120).print(table)
    return ExitCode.OK if all_healthy else ExitCode.LAB_ERROR


@click.command()
@state_dir_option
def down(state_dir: Path | None) -> int:
    """Stop everything the lab started, in reverse dependency order; keep data and logs."""
    from lab.runtime import get_runtime
    from lab.state import find_state

    directory = resolve_state_dir(state_dir)
    state = find_state(directory)
    if state is None:
        click.echo(f"no lab is running in {directory}; nothing to stop")
        return ExitCode.OK
    stopped = get_runtime(state.runtime).down(state, _echo)
    click.echo(f"lab down: stopped {len(stopped)} processes; logs stay in {directory / 'logs'}")
    return ExitCode.OK
