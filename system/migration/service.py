"""The migration core: the profiles API's reads and writes under the current phase, guarded
phase changes, sync and verify. No HTTP here (``api.py`` is the shell).

Every request holds the phase lock shared; a phase change holds it alone, so a request never
straddles two phases. Writes in phases where old is the source of truth go to old first
(its failure fails the request) and then to new best effort: a failure there — or new being
skipped while it is known down — queues the id for repair instead of failing the user.
"""
from __future__ import annotations

import asyncio
import logging
import time
from typing import Callable

from system.migration import verifier
from system.migration.phases import (ORDER, Phase, PhaseChangeRefused, check_verified, plan_change,
                                     previous)
from system.migration.profile import document
from system.migration.rwlock import RWLock
from system.migration.store_base import Row, StoreBase, StoreUnavailable
from system.migration.store_new import NewStore
from system.migration.sync import SyncJob, SyncReport

log = logging.getLogger("nineslab.migration")

RECHECK_LIMIT = 1000  # more mismatches than this are not worth re-checking under the lock


class Migration:
    def __init__(self, old: StoreBase, new: NewStore, *, events=None, metrics=None,
                 clock: Callable[[], float] = time.time, monotonic: Callable[[], float] = time.monotonic,
                 new_retry_seconds: float = 1.0, sync_batch_size: int = 2000,
                 sync_max_rows_per_second: float | None = None) -> None:
        self.old, self.new, self.events, self.metrics = old, new, events, metrics
        self.clock, self.monotonic = clock, monotonic
        self.phase = Phase.DUAL_WRITE
        self.epoch = 0
        self.changed_at = 0.0
        self.lock = RWLock()
        self._change_lock = asyncio.Lock()
        self._sync_lock = asyncio.Lock()
        self.new_retry_seconds = new_retry_seconds
        self._skip_until: dict[str, float] = {}   # best-effort store -> monotonic time to try again
        self.sync_job = SyncJob(old, new, lambda: self.phase, batch_size=sync_batch_size,
                                max_rows_per_second=sync_max_rows_per_second)
        self.mismatches_seen = 0
        self.repairs_queued = 0
        self.last_verify: dict | None = None

    # -- start-up ------------------------------------------------------------------------

    async def load_phase(self) -> None:
        """Read the durable phase from both stores; the higher epoch wins; default dual_write."""
        found = []
        for store in (self.old, self.new):
            try:
                record = await store.read_phase()
            except StoreUnavailable as exc:
                log.warning("cannot read the phase from %s: %s", store.name, exc)
                continue
            if record:
                found.append(record)
        if found:
            phase, self.epoch, self.changed_at = max(found, key=lambda r: r[1])
            self.phase = Phase(phase)
        self._set_phase_metric()

    # -- profiles ------------------------------------------------------------------------

    async def put(self, profile_id: str, display_name: str, home_region: str, settings: dict) -> Row:
        doc = document(profile_id, display_name, home_region, settings)
        async with self.lock.shared():
            phase = self.phase
            if phase.old_is_source:
                source, copy = self.old, self.new
            else:
                source, copy = self.new, (self.old if phase.writes_old else None)
            if source is self.new:
                version = await self.new.write_source(profile_id, doc, old_left_behind=copy is None)
            else:
                version = await source.write_source(profile_id, doc)
            row = Row(profile_id, display_name, home_region, settings, version)
            if copy is not None:
                await self._best_effort_copy(copy, source, row)
            self._count("write", phase)
            return row

    async def _best_effort_copy(self, copy: StoreBase, source: StoreBase, row: Row) -> None:
        if self.monotonic() >= self._skip_until.get(copy.name, 0.0):
            try:
                await copy.write_copy(row)
                return
            except StoreUnavailable as exc:
                self._skip_until[copy.name] = self.monotonic() + self.new_retry_seconds
                log.warning("best-effort write to %s failed, queued for repair: %s", copy.name, exc)
        self.repairs_queued += 1
        if self.metrics:
            self.metrics["repairs"].labels(copy.name).inc()
        try:
            await source.queue_repair(row.id)
        except StoreUnavailable as exc:  # the full backfill scan still finds the row
            log.warning("could not queue repair of %s: %s", row.id, exc)

    async def get(self, profile_id: str) -> Row | None:
        async with self.lock.shared():
            phase = self.phase
            self._count("read", phase)
            if phase is Phase.DUAL_WRITE:
                return await self.old.get(profile_id)
            if phase is Phase.DUAL_READ:
                return await self._compare_read(profile_id)
            row = await self.new.get(profile_id)
            if row is None and phase is Phase.READ_NEW:
                return await self.old.get(profile_id)
            return row

    async def _compare_read(self, profile_id: str) -> Row | None:
        old_task = asyncio.ensure_future(self.old.get(profile_id))
        try:
            new_row = await self.new.get(profile_id)
        except StoreUnavailable as exc:
            log.warning("compare read of %s skipped: %s", profile_id, exc)
            return await old_task
        old_row = await old_task
        if (old_row is None) != (new_row is None) or (old_row and not verifier.same(old_row, new_row)):
            self.mismatches_seen += 1
            if self.metrics:
                self.metrics["mismatches"].inc()
            log.warning("dual-read mismatch on profile %s: old v%s new v%s", profile_id,
                        old_row.version if old_row else None, new_row.version if new_row else None)
            try:
                await self.old.queue_repair(profile_id)
            except StoreUnavailable:
                pass
        return old_row

    # -- phases --------------------------------------------------------------------------

    def phase_info(self) -> dict:
        return {"phase": self.phase.value, "index": self.phase.index, "epoch": self.epoch,
                "changed_at": self.changed_at, "phases": [p.value for p in ORDER]}

    async def back(self) -> dict:
        return await self.change_phase(previous(self.phase))

    async def change_phase(self, target: Phase) -> dict:
        async with self._change_lock:
            change = plan_change(self.phase, target)
            report = None
            if change.needs_verification:
                report = await verifier.verify(self.old, self.new)
                if report.mismatches > RECHECK_LIMIT or not report.complete:
                    check_verified(change, report.mismatches, report.examples)
            async with self.lock.exclusive():
                if change.needs_verification:
                    # writes between the scan and the lock may have changed rows: check again
                    queued = await self.old.repairs(RECHECK_LIMIT) + await self.new.repairs(RECHECK_LIMIT)
                    still = await verifier.recheck(self.old, self.new, report.examples + queued)
                    check_verified(change, len(still), still)
                if target is Phase.DUAL_READ and change.current is Phase.READ_NEW:
                    # old becomes the source of truth again: first give it every write it missed
                    # (queued by best-effort failures in read_new and by every write after it)
                    await self._pull_back_to_old()
                await self._record_phase(target)
        self._set_phase_metric()
        if self.events:
            self.events.emit("migration", "phase", target.value,
                             f"{change.current.value} -> {target.value} (epoch {self.epoch})")
        return {**self.phase_info(), "previous": change.current.value,
                "verify": report.as_dict() if report else None}

    async def _pull_back_to_old(self) -> None:
        """Going back to old as the source of truth: first give old the writes it missed."""
        try:
            rep = SyncReport()
            await self.sync_job.repair(rep)
        except StoreUnavailable as exc:
            log.warning("rollback to dual_read: old could not be repaired now (%s); "
                        "run sync when it is back", exc)

    async def _record_phase(self, target: Phase) -> None:
        epoch, now = self.epoch + 1, self.clock()
        required, other = (self.old, self.new) if target.old_is_source else (self.new, self.old)
        try:
            await required.write_phase(target.value, epoch, now)
        except StoreUnavailable as exc:
            raise StoreUnavailable(exc.store, f"the phase change to {target.value} was not made: "
                                   f"it could not be recorded durably ({exc})") from exc
        try:
            await other.write_phase(target.value, epoch, now)
        except StoreUnavailable as exc:
            log.warning("phase recorded in %s only: %s", required.name, exc)
        self.phase, self.epoch, self.changed_at = target, epoch, now

    # -- sync and verify -----------------------------------------------------------------

    async def sync(self, max_rows_per_second: float | None = None, backfill: bool = True) -> dict:
        async with self._sync_lock:
            report = await self.sync_job.run(max_rows_per_second=max_rows_per_second, backfill=backfill)
        if self.metrics:
            self.metrics["synced"].inc(report.copied + report.repaired)
        return report.as_dict()

    async def verify(self) -> dict:
        report = await verifier.verify(self.old, self.new)
        if self.metrics:
            self.metrics["verify_mismatches"].set(report.mismatches)
        self.last_verify = report.as_dict()
        return self.last_verify

    # -- health --------------------------------------------------------------------------

    async def readiness(self) -> dict[str, str]:
        """What is not usable in the current phase (empty when ready)."""
        problems = {}
        needed = [self.old] if self.phase.old_is_source else [self.new]
        for store in needed:
            try:
                await store.ping()
            except StoreUnavailable as exc:
                problems[store.name] = str(exc)
        return problems

    def _count(self, op: str, phase: Phase) -> None:
        if self.metrics:
            self.metrics["requests"].labels(op, phase.value).inc()

    def _set_phase_metric(self) -> None:
        if self.metrics:
            for p in ORDER:
                self.metrics["phase"].labels(p.value).set(1 if p is self.phase else 0)
