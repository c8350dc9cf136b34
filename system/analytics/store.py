"""The analytics database (``analytics`` on pg-analytics): the archived raw events, the speed
and batch rollups, and the batch watermark.

``ingest`` is the exactly-once step: in one transaction it inserts the raw events
(``ON CONFLICT (key) DO NOTHING RETURNING key``) and adds the rollup of only the events that
were new. The caller acks JetStream after the commit, so a redelivery after a crash finds
its keys already stored and adds nothing.

Retention: raw events are kept ``retention_seconds`` (default 48 h, twice the CHAT stream's
24 h) and ``prune`` deletes older ones, with the speed rollups the batch layer has
superseded. An event older than the retention can no longer be checked against its key, so
``ingest`` refuses it (counted as expired) rather than risk counting it twice.
"""
from __future__ import annotations

import asyncio
import dataclasses
import time
from typing import Callable

import asyncpg

from lab.errors import DependencyError
from system.analytics.model import Event, rollup

DDL = """
CREATE TABLE IF NOT EXISTS raw_events (
    key text PRIMARY KEY, status text NOT NULL, region text NOT NULL, conv text,
    latency_ms double precision, ts double precision NOT NULL, second bigint NOT NULL);
CREATE INDEX IF NOT EXISTS raw_events_second ON raw_events (second);
CREATE TABLE IF NOT EXISTS rollup_speed (
    second bigint NOT NULL, metric text NOT NULL, label text NOT NULL, value double precision NOT NULL,
    PRIMARY KEY (second, metric, label));
CREATE TABLE IF NOT EXISTS rollup_batch (
    second bigint NOT NULL, metric text NOT NULL, label text NOT NULL, value double precision NOT NULL,
    PRIMARY KEY (second, metric, label));
CREATE TABLE IF NOT EXISTS batch_state (
    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton), watermark bigint NOT NULL,
    ran_at double precision NOT NULL);
"""

# the batch layer's recomputation: the same rollup as model.rollup, in SQL over raw events
BATCH_SQL = """
INSERT INTO rollup_batch (second, metric, label, value)
SELECT second, 'status', status, count(*) FROM raw_events WHERE second >= $1 AND second < $2 GROUP BY 1, 3
UNION ALL
SELECT second, 'messages', '', count(*) FROM raw_events
  WHERE status = 'sent' AND second >= $1 AND second < $2 GROUP BY 1
UNION ALL
SELECT second, 'messages_region', region, count(*) FROM raw_events
  WHERE status = 'sent' AND second >= $1 AND second < $2 GROUP BY 1, 3
UNION ALL
SELECT second, 'latency_bucket', bucket, count(*) FROM (
  SELECT second, CASE {cases} ELSE '+Inf' END AS bucket FROM raw_events
  WHERE status = 'delivered' AND latency_ms IS NOT NULL AND second >= $1 AND second < $2) b GROUP BY 1, 3
UNION ALL
SELECT second, 'latency_sum', '', sum(latency_ms) FROM raw_events
  WHERE status = 'delivered' AND latency_ms IS NOT NULL AND second >= $1 AND second < $2 GROUP BY 1
"""


def _batch_sql() -> str:
    from system.analytics.model import LATENCY_BUCKETS_MS
    cases = " ".join(f"WHEN latency_ms <= {b} THEN '{b}'" for b in LATENCY_BUCKETS_MS)
    return BATCH_SQL.format(cases=cases)


DEFAULT_RETENTION_SECONDS = 48 * 3600
PRUNE_CHUNK = 20_000   # rows a delete statement removes at most: short transactions, no long locks


@dataclasses.dataclass
class Ingested:
    """What one ``ingest`` did: the events new to the store, and how many were too old to count."""
    fresh: list[Event]
    expired: int = 0


class AnalyticsStore:
    def __init__(self, dsn: str, *, timeout: float = 5.0, pool_size: int = 6,
                 retention_seconds: int = DEFAULT_RETENTION_SECONDS,
                 clock: Callable[[], float] = time.time) -> None:
        self.dsn, self.timeout, self.pool_size = dsn, timeout, pool_size
        self.retention_seconds, self.clock = retention_seconds, clock
        self._pool: asyncpg.Pool | None = None
        self._lock = asyncio.Lock()
        self._batch_sql = _batch_sql()

    async def pool(self) -> asyncpg.Pool:
        if self._pool is not None:
            return self._pool
        async with self._lock:
            if self._pool is None:
                try:
                    # synchronous_commit stays on: with it off, a killed PostgreSQL could lose
                    # commits whose events were already acked
                    pool = await asyncpg.create_pool(self.dsn, min_size=1, max_size=self.pool_size,
                                                     timeout=self.timeout, command_timeout=30)
                    async with pool.acquire() as conn:
                        await conn.execute("SELECT pg_advisory_lock(7262)")
                        try:
                            await conn.execute(DDL)
                        finally:
                            await conn.execute("SELECT pg_advisory_unlock(7262)")
                except (OSError, asyncpg.PostgresError, asyncio.TimeoutError) as exc:
                    raise DependencyError(f"pg-analytics: cannot connect ({type(exc).__name__}: {exc})") from exc
                self._pool = pool
        return self._pool

    async def close(self) -> None:
        if self._pool is not None:
            pool, self._pool = self._pool, None
            try:
                await asyncio.wait_for(pool.close(), 5)
            except (asyncio.TimeoutError, OSError):
                pool.terminate()

    async def ping(self) -> None:
        pool = await self.pool()
        await asyncio.wait_for(pool.fetchval("SELECT 1"), self.timeout)

    def horizon(self) -> int:
        """The first second whose raw events are still kept."""
        return int(self.clock()) - self.retention_seconds

    async def ingest(self, events: list[Event]) -> Ingested:
        """Store the events not seen before and add their rollup, atomically."""
        horizon = self.horizon()
        kept = [e for e in events if e.second >= horizon]
        if not kept:
            return Ingested([], len(events))
        # sorted by key: two concurrent batches lock shared keys in one order and never deadlock
        unique = sorted({e.key: e for e in kept}.values(), key=lambda e: e.key)
        pool = await self.pool()
        async with pool.acquire() as conn:
            async with conn.transaction():
                inserted = await conn.fetch(
                    "INSERT INTO raw_events (key, status, region, conv, latency_ms, ts, second) "
                    "SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], "
                    "$5::float8[], $6::float8[], $7::bigint[]) ON CONFLICT (key) DO NOTHING RETURNING key",
                    [e.key for e in unique], [e.status for e in unique], [e.region for e in unique],
                    [e.conv for e in unique], [e.latency_ms for e in unique], [e.ts for e in unique],
                    [e.second for e in unique])
                new_keys = {r["key"] for r in inserted}
                fresh = [e for e in unique if e.key in new_keys]
                rows = rollup(fresh)
                if rows:
                    keys = sorted(rows)  # a fixed order: concurrent upserts never deadlock
                    await conn.execute(
                        "INSERT INTO rollup_speed (second, metric, label, value) "
                        "SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::float8[]) "
                        "ON CONFLICT (second, metric, label) DO UPDATE SET value = rollup_speed.value + EXCLUDED.value",
                        [k[0] for k in keys], [k[1] for k in keys], [k[2] for k in keys], [rows[k] for k in keys])
        return Ingested(fresh, len(events) - len(kept))

    async def prune(self) -> dict[str, int]:
        """Delete raw events older than the retention, and the speed rollups below both the
        batch watermark and that horizon (the batch rollups answer for those seconds)."""
        horizon = self.horizon()
        pool = await self.pool()
        removed = {"raw_events": 0, "rollup_speed": 0}
        async with pool.acquire() as conn:
            watermark = await conn.fetchval("SELECT watermark FROM batch_state") or 0
            statements = {
                "raw_events": ("DELETE FROM raw_events WHERE ctid IN (SELECT ctid FROM raw_events "
                               "WHERE second < $1 LIMIT $2)", horizon),
                "rollup_speed": ("DELETE FROM rollup_speed WHERE ctid IN (SELECT ctid FROM rollup_speed "
                                 "WHERE second < $1 LIMIT $2)", min(horizon, watermark)),
            }
            for table, (sql, before) in statements.items():
                while True:
                    status = await conn.execute(sql, before, PRUNE_CHUNK)
                    count = int(status.split()[-1])
                    removed[table] += count
                    if count < PRUNE_CHUNK:
                        break
        return removed

    # -- batch layer -----------------------------------------------------------------

    async def watermark(self) -> int:
        pool = await self.pool()
        return await pool.fetchval("SELECT watermark FROM batch_state") or 0

    async def recompute(self, until: int, lookback: int, now: float) -> tuple[int, int]:
        """Recompute batch rollups for [until - lookback, until) from raw events; move the watermark."""
        pool = await self.pool()
        async with pool.acquire() as conn:
            async with conn.transaction():
                previous = await conn.fetchval("SELECT watermark FROM batch_state") or 0
                if previous:   # after a long pause, start where the last run stopped
                    start = min(until - lookback, previous)
                else:          # first run: everything archived so far
                    start = min(until - lookback, await conn.fetchval("SELECT min(second) FROM raw_events") or until)
                await conn.execute("DELETE FROM rollup_batch WHERE second >= $1 AND second < $2", start, until)
                await conn.execute(self._batch_sql, start, until)
                await conn.execute(
                    "INSERT INTO batch_state (singleton, watermark, ran_at) VALUES (true, $1, $2) "
                    "ON CONFLICT (singleton) DO UPDATE SET watermark = GREATEST(batch_state.watermark, "
                    "EXCLUDED.watermark), ran_at = EXCLUDED.ran_at", until, now)
        return start, until

    # -- serving layer -----------------------------------------------------------------

    async def merged(self, metric: str, label: str | None, start: int, end: int) -> list[tuple[int, str, float]]:
        """(second, label, value) for [start, end): batch below the watermark, speed from it on."""
        pool = await self.pool()
        label_sql = "" if label is None else " AND label = $4"
        args = [metric, start, end] + ([] if label is None else [label])
        rows = await pool.fetch(
            "WITH w AS (SELECT coalesce((SELECT watermark FROM batch_state), 0) AS wm) "
            f"SELECT second, label, value FROM rollup_batch, w WHERE metric = $1 AND second >= $2 AND second < $3 "
            f"AND second < w.wm{label_sql} "
            "UNION ALL "
            f"SELECT second, label, value FROM rollup_speed, w WHERE metric = $1 AND second >= $2 AND second < $3 "
            f"AND second >= w.wm{label_sql}", *args)
        return [(r["second"], r["label"], r["value"]) for r in rows]

    async def totals(self) -> dict[tuple[str, str], float]:
        """Sums over all time, merged, by (metric, label)."""
        pool = await self.pool()
        rows = await pool.fetch(
            "WITH w AS (SELECT coalesce((SELECT watermark FROM batch_state), 0) AS wm) "
            "SELECT metric, label, sum(value) AS v FROM ("
            " SELECT metric, label, value FROM rollup_batch, w WHERE second < w.wm"
            " UNION ALL SELECT metric, label, value FROM rollup_speed, w WHERE second >= w.wm) x "
            "GROUP BY metric, label")
        return {(r["metric"], r["label"]): r["v"] for r in rows}

    async def active_conversations(self, since: float) -> int:
        pool = await self.pool()
        return await pool.fetchval(
            "SELECT count(DISTINCT conv) FROM raw_events WHERE status = 'sent' AND second >= $1",
            int(since))
