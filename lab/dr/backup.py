"""One backup of one regional chat store: ``pg_basebackup`` (physical, tar, gzip level 1, WAL
streamed alongside) into the backup location, with a manifest that says what JetStream
position it covers, how big it is and how long it took.

The JetStream position is read *before* the copy starts (see ``lab.dr.jetstream``); when
NATS does not answer, the backup is still taken, with position 0: a restore from it then
replays everything the stream holds, which is slower but loses nothing.
"""
from __future__ import annotations

import asyncio
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from lab.dr import catalog, jetstream
from lab.dr.catalog import BackupManifest, StreamPosition
from lab.dr.policy import BackupPolicy
from lab.errors import DependencyError, UsageError
from lab.servers import postgres
from lab.state import LabState, ProcessRecord

BASEBACKUP_TIMEOUT = 300.0
NATS_TIMEOUT = 3.0


@dataclass(frozen=True)
class Store:
    """A regional chat store of the running lab and how to reach JetStream beside it."""

    region: str
    record: ProcessRecord
    nats_urls: tuple[str, ...]

    @property
    def port(self) -> int:
        return self.record.ports["main"]


def regional_stores(state: LabState) -> dict[str, Store]:
    """region -> its PostgreSQL (the chat store), for every region with one."""
    nats_urls = tuple(state.endpoints[r.name] for r in state.processes_by(role="nats") if r.name in state.endpoints)
    return {r.region: Store(r.region, r, nats_urls) for r in state.processes_by(role="postgres") if r.region}


def store_of(state: LabState, region: str) -> Store:
    stores = regional_stores(state)
    if region not in stores:
        raise UsageError(f"unknown region {region!r}; the lab's regions are {', '.join(sorted(stores)) or 'none'}")
    return stores[region]


async def connect_nats(urls: tuple[str, ...]):
    import nats
    return await nats.connect(servers=list(urls), connect_timeout=NATS_TIMEOUT, max_reconnect_attempts=2,
                              allow_reconnect=True)


async def _position(store: Store) -> StreamPosition:
    nc = await connect_nats(store.nats_urls)
    try:
        return await asyncio.wait_for(jetstream.position(nc.jetstream(), store.region), NATS_TIMEOUT * 2)
    finally:
        await nc.close()


def read_position(store: Store) -> tuple[StreamPosition, str | None]:
    """The region's stream position now, or position 0 and why it could not be read."""
    if not store.nats_urls:
        return (StreamPosition(stream=jetstream.CHAT_STREAM, subject=jetstream.subject_of(store.region)),
                "the lab runs no NATS: a restore replays nothing")
    try:
        return asyncio.run(_position(store)), None
    except Exception as exc:  # noqa: BLE001 - any NATS failure: fall back to a full replay
        unknown = StreamPosition(stream=jetstream.CHAT_STREAM, subject=jetstream.subject_of(store.region))
        return unknown, f"JetStream did not answer ({type(exc).__name__}); a restore replays the whole stream"


def take_backup(store: Store, root: Path, *, trigger: str = "manual",
                clock: Callable[[], float] = time.time) -> BackupManifest:
    """Copy the store into ``root/<region>/<id>/`` and return the manifest written beside it."""
    started = clock()
    began = time.monotonic()
    stream, warning = read_position(store)
    backup_id = catalog.new_id(started)
    partial = catalog.partial_dir(root, store.region, backup_id)
    partial.parent.mkdir(parents=True, exist_ok=True)
    argv = [str(postgres.bin_dir() / "pg_basebackup"), "-h", "127.0.0.1", "-p", str(store.port), "-U", "postgres",
            "-D", str(partial), "-Ft", "--compress=gzip:1", "-X", "stream", "-c", "fast",
            "-l", f"nineslab {store.region} {backup_id}"]
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=BASEBACKUP_TIMEOUT)
    except subprocess.TimeoutExpired as exc:
        shutil.rmtree(partial, ignore_errors=True)
        raise DependencyError(f"backup of {store.record.name} did not finish in {BASEBACKUP_TIMEOUT:.0f} s") from exc
    if done.returncode != 0:
        shutil.rmtree(partial, ignore_errors=True)
        detail = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise DependencyError(f"backup of {store.record.name} failed: {detail}")
    files = sorted(p.name for p in partial.iterdir())
    manifest = BackupManifest(
        id=backup_id, region=store.region, store=store.record.name, trigger=trigger, started_at=started,
        finished_at=clock(), duration_seconds=round(time.monotonic() - began, 3),
        size_bytes=sum(p.stat().st_size for p in partial.iterdir()), files=files, stream=stream,
        warnings=[warning] if warning else [])
    catalog.commit(partial, manifest)
    return manifest


def backup_and_prune(store: Store, policy: BackupPolicy, state_dir: Path | str, *, trigger: str = "manual",
                     clock: Callable[[], float] = time.time) -> tuple[BackupManifest, list[BackupManifest]]:
    """One backup of ``store`` under the region's lock, then the retention policy: (new, pruned)."""
    root = policy.root(state_dir)
    with catalog.region_lock(root, store.region):
        manifest = take_backup(store, root, trigger=trigger, clock=clock)
        return manifest, catalog.prune(root, store.region, policy, now=clock())
