"""What the old and the new profile stores share: a lazily connected asyncpg pool with
deadlines, the durable phase record, the repair queue and error translation.

Every failure of a store (refused, reset, timed out, server error) becomes
``StoreUnavailable`` naming the store, so the service can answer 503 for the source of
truth and queue a repair for the best-effort side.
"""
from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass
from typing import Any, Awaitable, Callable, TypeVar

import asyncpg

from lab.errors import DependencyError
from system.migration.profile import checksum, document

T = TypeVar("T")

CONTROL_DDL = """
CREATE TABLE IF NOT EXISTS migration_control (
    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    phase text NOT NULL, epoch bigint NOT NULL, changed_at double precision NOT NULL);
CREATE TABLE IF NOT EXISTS repair_queue (id text PRIMARY KEY, queued_at double precision NOT NULL);
"""


class StoreUnavailable(DependencyError):
    """A profile store could not be used (down, cut off, too slow, or it refused)."""

    def __init__(self, store: str, message: str) -> None:
        super().__init__(f"{store}: {message}")
        self.store = store


@dataclass(frozen=True)
class Row:
    """One profile as both stores hold it, whatever the schema."""

    id: str
    display_name: str
    home_region: str
    settings: dict
    version: int

    @property
    def doc(self) -> dict:
        return document(self.id, self.display_name, self.home_region, self.settings)

    @property
    def checksum(self) -> str:
        return checksum(self.doc)

    def api(self) -> dict:
        return {**self.doc, "version": self.version, "checksum": self.checksum}


async def _init_connection(conn: asyncpg.Connection) -> None:
    await conn.set_type_codec("jsonb", encoder=json.dumps, decoder=json.loads, schema="pg_catalog")


class StoreBase:
    """A PostgreSQL store reached through one DSN (a fault-proxy link in the lab)."""

    DDL = ""

    def __init__(self, name: str, dsn: str, *, timeout: float = 2.0, pool_size: int = 10,
                 clock: Callable[[], float] = time.time) -> None:
        self.name, self.dsn, self.timeout, self.clock = name, dsn, timeout, clock
        self.pool_size = pool_size
        self._pool: asyncpg.Pool | None = None
        self._schema_ready = False
        self._connect_lock = asyncio.Lock()

    async def _ensure(self) -> asyncpg.Pool:
        if self._pool is not None and self._schema_ready:
            return self._pool
        async with self._connect_lock:
            if self._pool is None:
                self._pool = await asyncpg.create_pool(
                    self.dsn, min_size=0, max_size=self.pool_size, init=_init_connection,
                    command_timeout=self.timeout, timeout=self.timeout,
                    max_inactive_connection_lifetime=60)
            if not self._schema_ready:
                async with self._pool.acquire(timeout=self.timeout) as conn:
                    # two services starting at once could race on CREATE TABLE IF NOT EXISTS
                    await conn.execute("SELECT pg_advisory_lock(7261)")
                    try:
                        await conn.execute(CONTROL_DDL + self.DDL)
                    finally:
                        await conn.execute("SELECT pg_advisory_unlock(7261)")
                self._schema_ready = True
        return self._pool

    async def run(self, what: str, op: Callable[[asyncpg.Connection], Awaitable[T]],
                  timeout: float | None = None) -> T:
        """Run ``op`` on a pooled connection within the deadline; translate every failure."""
        async def attempt() -> T:
            pool = await self._ensure()
            async with pool.acquire(timeout=self.timeout) as conn:
                return await op(conn)
        try:
            return await asyncio.wait_for(attempt(), timeout or self.timeout * 2)
        except Exception as exc:  # noqa: BLE001 - refused, reset, timed out, protocol or server error alike
            raise StoreUnavailable(self.name, f"could not {what} ({type(exc).__name__}: {exc})") from exc

    async def ping(self) -> None:
        await self.run("answer a ping", lambda c: c.fetchval("SELECT 1"), timeout=self.timeout)

    async def close(self) -> None:
        if self._pool is not None:
            pool, self._pool = self._pool, None
            try:
                await asyncio.wait_for(pool.close(), 5)
            except (asyncio.TimeoutError, OSError, asyncpg.InterfaceError):
                pool.terminate()

    # -- the durable phase record ------------------------------------------------

    async def read_phase(self) -> tuple[str, int, float] | None:
        row = await self.run("read the migration phase", lambda c: c.fetchrow(
            "SELECT phase, epoch, changed_at FROM migration_control"))
        return (row["phase"], row["epoch"], row["changed_at"]) if row else None

    async def write_phase(self, phase: str, epoch: int, changed_at: float) -> None:
        await self.run("record the migration phase", lambda c: c.execute(
            "INSERT INTO migration_control (singleton, phase, epoch, changed_at) VALUES (true, $1, $2, $3) "
            "ON CONFLICT (singleton) DO UPDATE SET phase = EXCLUDED.phase, epoch = EXCLUDED.epoch, "
            "changed_at = EXCLUDED.changed_at", phase, epoch, changed_at))

    # -- repairs ---------------------------------------------------------------------

    async def queue_repair(self, profile_id: str) -> None:
        await self.run("queue a repair", lambda c: c.execute(
            "INSERT INTO repair_queue (id, queued_at) VALUES ($1, $2) ON CONFLICT (id) DO NOTHING",
            profile_id, self.clock()))

    async def repairs(self, limit: int) -> list[str]:
        rows = await self.run("list queued repairs", lambda c: c.fetch(
            "SELECT id FROM repair_queue ORDER BY id LIMIT $1", limit))
        return [r["id"] for r in rows]

    async def repair_count(self) -> int:
        return await self.run("count queued repairs", lambda c: c.fetchval("SELECT count(*) FROM repair_queue"))

    async def clear_repairs(self, ids: list[str]) -> None:
        await self.run("clear repairs", lambda c: c.execute(
            "DELETE FROM repair_queue WHERE id = ANY($1::text[])", ids))

    # -- what each schema implements ---------------------------------------------------

    async def write_source(self, profile_id: str, doc: dict) -> int:
        """Write as the source of truth; returns the new version."""
        raise NotImplementedError

    async def write_copy(self, row: Row) -> bool:
        """Write a row decided elsewhere, unless this store already holds that version or newer."""
        raise NotImplementedError

    async def get(self, profile_id: str) -> Row | None:
        raise NotImplementedError

    async def get_many(self, ids: list[str]) -> dict[str, Row]:
        raise NotImplementedError

    async def page(self, after: str, limit: int) -> list[Row]:
        """Rows with id > ``after`` in id order (keyset pagination)."""
        raise NotImplementedError

    async def count(self) -> int:
        raise NotImplementedError


def rows_from(records: list[Any], make: Callable[[Any], Row]) -> list[Row]:
    return [make(r) for r in records]
