"""``nines dr backup [REGION]``, ``nines dr list``, ``nines dr restore REGION``: disaster recovery
of the regional chat stores (lab/dr, docs/dr.md).

Exit codes: 0 done; 2 bad input (unknown region, no backup to restore, a store that still
answers without --force, a region busy with another backup or restore); 20 the lab is not up
or a dependency failed (PostgreSQL, NATS).
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import click

from lab.commands.infra import resolve_state_dir, state_dir_option
from lab.errors import ExitCode, LabError


def _lab(state_dir: Path):
    from lab.state import find_state
    state = find_state(state_dir)
    if state is None:
        raise LabError(f"no lab is running in {state_dir}; start one with `nines up`")
    return state


def _size(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"


json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
optional_region = click.argument("region", required=False)


@click.group()
def dr() -> None:
    """Backups and restore of the regional chat stores (PostgreSQL + JetStream replay)."""


@dr.command()
@optional_region
@json_option
@state_dir_option
def backup(region: str | None, as_json: bool, state_dir: Path | None) -> int:
    """Back up REGION's chat store now (every region when none is given), then prune."""
    from lab.dr.backup import backup_and_prune, regional_stores, store_of
    from lab.dr.scheduler import policy_of

    directory = resolve_state_dir(state_dir)
    state = _lab(directory)
    stores = [store_of(state, region)] if region else list(regional_stores(state).values())
    policy = policy_of(directory)
    done = []
    for store in stores:
        manifest, pruned = backup_and_prune(store, policy, directory)
        done.append({**manifest.to_json(), "pruned": [m.id for m in pruned]})
        if not as_json:
            click.echo(f"{store.region:<10} {manifest.id}  {_size(manifest.size_bytes):>9}  "
                       f"{manifest.duration_seconds:.1f} s  covers {manifest.stream.subject} up to seq "
                       f"{manifest.stream.covered_seq}" + (f"; pruned {len(pruned)}" if pruned else ""))
            for warning in manifest.warnings:
                click.echo(f"  warning: {warning}", err=True)
    if as_json:
        click.echo(json.dumps(done, indent=2))
    return ExitCode.OK


@dr.command(name="list")
@optional_region
@json_option
@state_dir_option
def list_(region: str | None, as_json: bool, state_dir: Path | None) -> int:
    """The backups kept, newest first, with what each covers."""
    from lab.dr import catalog
    from lab.dr.scheduler import policy_of

    directory = resolve_state_dir(state_dir)
    policy = policy_of(directory)
    root = policy.root(directory)
    backups = catalog.list_backups(root, region)
    if as_json:
        click.echo(json.dumps([m.to_json() for m in backups], indent=2))
        return ExitCode.OK
    if not backups:
        click.echo(f"no backups{' of ' + region if region else ''} in {root}")
        return ExitCode.OK
    now = time.time()
    for m in backups:
        age = now - m.started_at
        click.echo(f"{m.region:<10} {m.id}  {_size(m.size_bytes):>9}  {m.duration_seconds:5.1f} s  "
                   f"{age / 60:7.1f} min ago  seq {m.stream.covered_seq:<8} {m.trigger}")
    click.echo(f"{len(backups)} backups in {root}; policy: every {policy.interval_seconds:g} s, "
               f"keep {policy.keep_last}, max age {policy.max_age_hours:g} h")
    return ExitCode.OK


@dr.command()
@click.argument("region")
@click.option("--force", is_flag=True, help="Restore also when the store still runs and answers (its data is replaced).")
@json_option
@state_dir_option
def restore(region: str, force: bool, as_json: bool, state_dir: Path | None) -> int:
    """Rebuild REGION's chat store from its last backup, then replay JetStream from there."""
    from lab.dr.restore import restore_region
    from lab.dr.scheduler import policy_of

    directory = resolve_state_dir(state_dir)
    _lab(directory)
    result = restore_region(directory, region, policy_of(directory).root(directory), force=force)
    if as_json:
        click.echo(json.dumps(result.to_json(), indent=2))
        return ExitCode.OK
    r = result.replay
    click.echo(f"restored {result.store} from backup {result.backup.id} "
               f"({(result.restored_at - result.backup.started_at) / 60:.1f} min old) in {result.restore_seconds:.1f} s")
    span = f"seq {r.first_seq}..{r.last_seq}" if r.first_seq is not None else "nothing after the backup"
    click.echo(f"replayed chat.{region} from seq {r.from_seq} to {r.to_seq}: {r.scanned} read ({span}), "
               f"{r.inserted} were missing and stored; sender copies {r.sender_copies_inserted} of "
               f"{r.sender_copies_scanned}; {r.seconds:.1f} s")
    for warning in r.warnings:
        click.echo(f"warning: {warning}", err=True)
    click.echo(f"total {result.total_seconds:.1f} s")
    return ExitCode.OK
