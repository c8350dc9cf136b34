"""The backfill/sync job: copies every profile from pg-old to pg-new and repairs the rows
whose best-effort write failed.

- **Checkpointed**: the backfill records the last id it copied in pg-new after every
  batch; a job that was stopped (crash, cancel, a cut link) resumes there.
- **Throttled**: a token bucket caps rows a second (``max_rows_per_second``).
- **Idempotent**: a copy only replaces an older version (or the same version with other
  content), so running it twice, or concurrently with live writes, changes nothing more.

Repairs drain the repair queues of both stores: for each queued id the higher version
wins and is copied to the other side.
"""
from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, field
from typing import Awaitable, Callable

from system.migration.phases import Phase
from system.migration.store_base import Row, StoreBase
from system.migration.store_new import NewStore
from system.migration.throttle import Throttle

JOB = "backfill"


@dataclass
class SyncReport:
    scanned: int = 0
    copied: int = 0
    repaired: int = 0
    resumed_from: str = ""
    seconds: float = 0.0
    errors: list[str] = field(default_factory=list)

    @property
    def rows_per_second(self) -> float:
        return self.scanned / self.seconds if self.seconds > 0 else 0.0

    def as_dict(self) -> dict:
        return {"scanned": self.scanned, "copied": self.copied, "repaired": self.repaired,
                "resumed_from": self.resumed_from, "seconds": round(self.seconds, 3),
                "rows_per_second": round(self.rows_per_second, 1), "errors": self.errors}


def winner(a: Row | None, b: Row | None, prefer_a: bool) -> Row | None:
    """The row both stores should hold: the higher version; on a tie the preferred side."""
    if a is None or b is None:
        return a or b
    if a.version != b.version:
        return a if a.version > b.version else b
    return a if prefer_a else b


class SyncJob:
    def __init__(self, old: StoreBase, new: NewStore, phase: Callable[[], Phase], *,
                 batch_size: int = 2000, max_rows_per_second: float | None = None,
                 clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        self.old, self.new, self.phase = old, new, phase
        self.batch_size, self.max_rows_per_second = batch_size, max_rows_per_second
        self.clock, self.sleep = clock, sleep

    async def run(self, *, max_rows_per_second: float | None = None, backfill: bool = True) -> SyncReport:
        report = SyncReport()
        started = self.clock()
        if self.phase() is not Phase.DECOMMISSION:
            if backfill:
                await self.backfill(report, max_rows_per_second or self.max_rows_per_second)
            await self.repair(report)
        report.seconds = self.clock() - started
        return report

    async def backfill(self, report: SyncReport, rate: float | None) -> None:
        throttle = Throttle(rate, self.clock)
        after, total = await self.new.checkpoint(JOB)
        report.resumed_from = after
        rows = await self.old.page(after, self.batch_size)
        prefetch: asyncio.Future | None = None
        try:
            while rows:
                # read the next page from old while this one is written to new
                prefetch = (asyncio.ensure_future(self.old.page(rows[-1].id, self.batch_size))
                            if len(rows) == self.batch_size else None)
                report.copied += await self.new.copy_many(rows)
                report.scanned += len(rows)
                after, total = rows[-1].id, total + len(rows)
                await self.new.save_checkpoint(JOB, after, total)
                wait = throttle.delay(len(rows))
                if wait > 0:
                    await self.sleep(wait)
                rows = await prefetch if prefetch else []
                prefetch = None
        finally:
            if prefetch is not None and not prefetch.done():
                prefetch.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await prefetch
        await self.new.save_checkpoint(JOB, "", total)  # done: the next run scans from the start

    async def repair(self, report: SyncReport) -> None:
        """Drain both repair queues; the higher version wins on each queued id."""
        prefer_old = self.phase().old_is_source
        for queue_store in (self.old, self.new):
            while True:
                ids = await queue_store.repairs(self.batch_size)
                if not ids:
                    break
                olds, news = await self.old.get_many(ids), await self.new.get_many(ids)
                for profile_id in ids:
                    a, b = olds.get(profile_id), news.get(profile_id)
                    row = winner(a, b, prefer_old)
                    if row is None:
                        continue
                    if a is None or a != row:
                        await self.old.write_copy(row)
                    if b is None or b != row:
                        await self.new.write_copy(row)
                    report.repaired += 1
                await queue_store.clear_repairs(ids)
