"""Backups on disk: one directory per backup, ``<root>/<region>/<id>/``, holding what
``pg_basebackup`` wrote (``base.tar.gz``, ``pg_wal.tar.gz``, ``backup_manifest``) and our own
``manifest.json`` (schema ``nineslab.dr-backup/1``).

A backup is written under ``<id>.partial`` and renamed when complete, so ``list_backups``
never shows half a backup (an interrupted one is swept by the next ``prune``).
"""
from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import time
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from lab.dr.policy import BackupPolicy, expired
from lab.errors import UsageError

SCHEMA = "nineslab.dr-backup/1"
MANIFEST = "manifest.json"
PARTIAL = ".partial"


class RegionBusy(UsageError):
    """Another backup or restore of the same region holds its lock."""


class StreamPosition(BaseModel):
    """What of the region's JetStream subject the backup already holds."""

    model_config = ConfigDict(extra="allow")

    stream: str
    subject: str
    created: str | None = None          # the stream's creation time: another one means it was re-made
    covered_seq: int = 0                # every chat.<region> message up to here is in the backup
    last_seq: int = 0                   # the stream's last sequence when the backup began


class BackupManifest(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)

    schema_: str = Field(default=SCHEMA, alias="schema")
    id: str
    region: str
    store: str                          # the PostgreSQL process, e.g. pg-us-east
    method: str = "pg_basebackup"
    trigger: str = "manual"             # manual | schedule
    started_at: float
    finished_at: float
    duration_seconds: float
    size_bytes: int
    files: list[str]
    stream: StreamPosition
    warnings: list[str] = Field(default_factory=list)

    def to_json(self) -> dict:
        return self.model_dump(mode="json", by_alias=True)


def new_id(now: float) -> str:
    """A backup id that sorts by time: ``20261125T221500.123Z``."""
    return time.strftime("%Y%m%dT%H%M%S", time.gmtime(now)) + f".{int(now * 1000) % 1000:03d}Z"


def backup_dir(root: Path, region: str, backup_id: str) -> Path:
    return root / region / backup_id


def partial_dir(root: Path, region: str, backup_id: str) -> Path:
    return root / region / (backup_id + PARTIAL)


def commit(partial: Path, manifest: BackupManifest) -> Path:
    """Write the manifest into a finished partial directory and make the backup visible."""
    (partial / MANIFEST).write_text(json.dumps(manifest.to_json(), indent=2) + "\n")
    final = partial.with_name(manifest.id)
    os.replace(partial, final)
    return final


@contextlib.contextmanager
def region_lock(root: Path, region: str):
    """Hold the region's lock: one backup or restore of a region at a time, across processes."""
    directory = root / region
    directory.mkdir(parents=True, exist_ok=True)
    with open(directory / ".lock", "a") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RegionBusy(f"a backup or restore of {region} is in progress; try again when it is done") from None
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def read_manifest(directory: Path) -> BackupManifest | None:
    try:
        return BackupManifest.model_validate_json((directory / MANIFEST).read_text())
    except (OSError, ValidationError, ValueError):
        return None


def list_backups(root: Path, region: str | None = None) -> list[BackupManifest]:
    """Complete backups, newest first; of one region or of every region under ``root``."""
    regions = [root / region] if region else sorted(p for p in root.glob("*") if p.is_dir())
    out = []
    for region_dir in regions:
        for directory in region_dir.glob("*"):
            if directory.is_dir() and not directory.name.endswith(PARTIAL):
                manifest = read_manifest(directory)
                if manifest is not None:
                    out.append(manifest)
    return sorted(out, key=lambda m: m.started_at, reverse=True)


def latest(root: Path, region: str) -> BackupManifest | None:
    backups = list_backups(root, region)
    return backups[0] if backups else None


def prune(root: Path, region: str, policy: BackupPolicy, *, now: float) -> list[BackupManifest]:
    """Delete the backups the retention policy expires, and leftovers of interrupted backups."""
    gone = expired(list_backups(root, region), policy, now=now)
    for manifest in gone:
        shutil.rmtree(backup_dir(root, region, manifest.id), ignore_errors=True)
    for leftover in (root / region).glob("*" + PARTIAL):
        if now - leftover.stat().st_mtime > 3600:      # not one being written right now
            shutil.rmtree(leftover, ignore_errors=True)
    return gone
