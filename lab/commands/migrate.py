"""``nines migrate``: drive the running migration service found in the lab state file.

::

    nines migrate phase [show]          the current phase
    nines migrate phase set PHASE       one phase forward (refused while the verifier disagrees)
    nines migrate phase back            one phase back (always allowed)
    nines migrate sync [--max-rows-per-second N]
    nines migrate verify                counts and the ids that differ (exit 12 when any)

The service's URL is ``endpoints["migration"]`` of ``<state_dir>/state.json``; the state dir
is ``--state-dir``, else ``$NINES_STATE_DIR``, else ``./.nines``.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import click

from lab.errors import DependencyError, ExitCode, LabError, UsageError


def service_url(state_dir: str | None) -> str:
    root = Path(state_dir or os.environ.get("NINES_STATE_DIR") or ".nines")
    path = root / "state.json"
    try:
        state = json.loads(path.read_text())
    except FileNotFoundError as exc:
        raise UsageError(f"no lab state file at {path}: start the lab with `nines up` "
                         "or pass --state-dir") from exc
    except (OSError, json.JSONDecodeError) as exc:
        raise LabError(f"cannot read the lab state file {path}: {exc}") from exc
    url = (state.get("endpoints") or {}).get("migration") if isinstance(state, dict) else None
    if not url:
        raise UsageError(f"the lab in {path} has no migration service (no endpoints.migration)")
    return str(url).rstrip("/")


def call(ctx: click.Context, method: str, path: str, body: dict | None = None) -> dict:
    import httpx
    url = service_url(ctx.obj.get("state_dir"))
    try:
        response = httpx.request(method, url + path, json=body, timeout=ctx.obj.get("timeout", 600))
    except httpx.HTTPError as exc:
        raise DependencyError(f"the migration service at {url} did not answer ({type(exc).__name__}); "
                              "is the lab up? see `nines status`") from exc
    try:
        data = response.json()
    except ValueError:
        data = {"error": response.text.strip()}
    if response.status_code in (409, 422, 404):
        raise UsageError(data.get("error") or f"refused with HTTP {response.status_code}")
    if response.status_code >= 400:
        raise DependencyError(data.get("error") or f"the migration service failed with HTTP {response.status_code}")
    return data


def emit(ctx: click.Context, data: dict, text: str) -> None:
    click.echo(json.dumps(data, indent=2) if ctx.obj.get("json") else text)


@click.group()
@click.option("--state-dir", default=None, help="Lab state directory (default $NINES_STATE_DIR or ./.nines).")
@click.option("--json", "as_json", is_flag=True, help="Print the service's JSON answer.")
@click.pass_context
def migrate(ctx: click.Context, state_dir: str | None, as_json: bool) -> None:
    """Phases, sync and verification of the profiles migration (pg-old -> pg-new)."""
    ctx.ensure_object(dict)
    ctx.obj.update(state_dir=state_dir, json=as_json)


@migrate.command()
@click.argument("action", type=click.Choice(["show", "set", "back"]), default="show")
@click.argument("target", required=False)
@click.pass_context
def phase(ctx: click.Context, action: str, target: str | None) -> None:
    """Show the phase, set the next one (`set PHASE`), or go back one (`back`)."""
    if action == "set":
        if not target:
            raise UsageError("`nines migrate phase set` needs a PHASE: dual_write, dual_read, read_new, "
                             "write_new_only or decommission")
        data = call(ctx, "POST", "/migration/phase", {"phase": target.replace("-", "_")})
    elif action == "back":
        data = call(ctx, "POST", "/migration/phase/back")
    else:
        if target:
            raise UsageError(f"`phase show` takes no argument (got {target!r}); did you mean `phase set {target}`?")
        data = call(ctx, "GET", "/migration/phase")
    prev = f" (was {data['previous']})" if data.get("previous") else ""
    emit(ctx, data, f"phase: {data['phase']}{prev}")


@migrate.command()
@click.option("--max-rows-per-second", type=click.FloatRange(min=1), default=None, help="Throttle the backfill.")
@click.option("--repairs-only", is_flag=True, help="Only drain the repair queues, no full backfill scan.")
@click.pass_context
def sync(ctx: click.Context, max_rows_per_second: float | None, repairs_only: bool) -> None:
    """Run the backfill/sync job now (resumes from its checkpoint)."""
    data = call(ctx, "POST", "/migration/sync", {"max_rows_per_second": max_rows_per_second,
                                                   "backfill": not repairs_only})
    emit(ctx, data, f"sync: scanned {data['scanned']}, copied {data['copied']}, repaired {data['repaired']} "
                    f"in {data['seconds']} s ({data['rows_per_second']} rows/s)")


@migrate.command()
@click.pass_context
def verify(ctx: click.Context) -> int:
    """Compare pg-old and pg-new; exit 12 when any row differs."""
    data = call(ctx, "POST", "/migration/verify")
    lines = [f"old rows: {data['old_count']}, new rows: {data['new_count']}, mismatches: {data['mismatches']}"]
    for key in ("missing_in_new", "missing_in_old", "differing"):
        if data.get(key):
            lines.append(f"{key}: {', '.join(data[key][:20])}" + (" ..." if len(data[key]) > 20 else ""))
    emit(ctx, data, "\n".join(lines))
    return int(ExitCode.INVARIANT_VIOLATED) if data["mismatches"] else int(ExitCode.OK)
