"""The scheduler's decisions in virtual time: due at once without a backup, then an interval
after the newest; a failed backup is retried after RETRY_SECONDS, not at once."""
from __future__ import annotations

from lab.dr import catalog
from lab.dr.catalog import BackupManifest, StreamPosition
from lab.dr.policy import BackupPolicy
from lab.dr.scheduler import RETRY_SECONDS, Scheduler
from lab.servers.base import free_port
from lab.state import LabState, ProcessRecord


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def write_backup(root, region: str, started_at: float) -> None:
    manifest = BackupManifest(id=catalog.new_id(started_at), region=region, store=f"pg-{region}",
                              started_at=started_at, finished_at=started_at + 1, duration_seconds=1,
                              size_bytes=1, files=[], stream=StreamPosition(stream="CHAT", subject=f"chat.{region}"))
    partial = catalog.partial_dir(root, region, manifest.id)
    partial.mkdir(parents=True)
    catalog.commit(partial, manifest)


def test_due_at_once_then_an_interval_after_the_newest_backup(tmp_path):
    scheduler = Scheduler(tmp_path, BackupPolicy(interval_seconds=300), clock=Clock(10_000.0))
    assert scheduler.next_due("us-east") == 0.0
    write_backup(scheduler.root, "us-east", 9_000.0)
    write_backup(scheduler.root, "us-east", 9_900.0)
    assert scheduler.next_due("us-east") == 10_200.0


def test_a_failed_backup_is_retried_later_and_reported(tmp_path):
    clock = Clock(10_000.0)
    scheduler = Scheduler(tmp_path, BackupPolicy(interval_seconds=300), clock=clock)
    dead = ProcessRecord(name="pg-us-east", role="postgres", region="us-east", ports={"main": free_port()})
    state = LabState(profile="quick", state_dir=str(tmp_path), created_at=0, processes={dead.name: dead})
    next_at = scheduler.run_once(state)          # nothing listens on the port: pg_basebackup fails
    assert scheduler.outcome["us-east"]["ok"] is False and "pg-us-east" in scheduler.outcome["us-east"]["error"]
    assert next_at == 10_000.0 + RETRY_SECONDS
    assert catalog.list_backups(scheduler.root) == []
