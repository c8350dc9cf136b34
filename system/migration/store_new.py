"""The new store, schema v2: normalised columns ``profiles_v2(id, display_name,
home_region, settings, version, checksum, updated_at)``, and the sync checkpoints."""
from __future__ import annotations

from system.migration.store_base import Row, StoreBase

DDL_V2 = """
CREATE TABLE IF NOT EXISTS profiles_v2 (
    id text PRIMARY KEY, display_name text NOT NULL, home_region text NOT NULL,
    settings jsonb NOT NULL, version bigint NOT NULL, checksum text NOT NULL,
    updated_at double precision NOT NULL);
CREATE TABLE IF NOT EXISTS sync_checkpoint (
    job text PRIMARY KEY, last_id text NOT NULL, rows_copied bigint NOT NULL,
    updated_at double precision NOT NULL);
"""

# a copy wins only when it is newer, or the same version with different content (a repair)
COPY_GUARD = ("WHERE p.version < EXCLUDED.version OR "
              "(p.version = EXCLUDED.version AND p.checksum <> EXCLUDED.checksum)")
COLUMNS = "id, display_name, home_region, settings, version"


def _row(record) -> Row:
    return Row(record["id"], record["display_name"], record["home_region"], record["settings"],
               int(record["version"]))


class NewStore(StoreBase):
    DDL = DDL_V2

    UPSERT = ("INSERT INTO profiles_v2 AS p (id, display_name, home_region, settings, version, checksum, updated_at) "
              "VALUES ($1, $2, $3, $4, 1, $5, $6) ON CONFLICT (id) DO UPDATE SET "
              "display_name = EXCLUDED.display_name, home_region = EXCLUDED.home_region, "
              "settings = EXCLUDED.settings, checksum = EXCLUDED.checksum, updated_at = EXCLUDED.updated_at, "
              "version = p.version + 1 RETURNING version")

    async def write_source(self, profile_id: str, doc: dict, *, old_left_behind: bool = False) -> int:
        """``old_left_behind``: old does not get this write (write_new_only, decommission); the id
        is queued in the same statement, so a rollback can give old what it missed."""
        from system.migration.profile import checksum
        sql = self.UPSERT if not old_left_behind else (
            f"WITH w AS ({self.UPSERT}), q AS (INSERT INTO repair_queue (id, queued_at) VALUES ($1, $6) "
            "ON CONFLICT (id) DO NOTHING) SELECT version FROM w")
        return await self.run("write a profile", lambda c: c.fetchval(
            sql, profile_id, doc["display_name"], doc["home_region"], doc["settings"], checksum(doc), self.clock()))

    async def write_copy(self, row: Row) -> bool:
        status = await self.run("copy a profile", lambda c: c.execute(
            "INSERT INTO profiles_v2 AS p (id, display_name, home_region, settings, version, checksum, updated_at) "
            "VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (id) DO UPDATE SET "
            "display_name = EXCLUDED.display_name, home_region = EXCLUDED.home_region, "
            "settings = EXCLUDED.settings, version = EXCLUDED.version, checksum = EXCLUDED.checksum, "
            "updated_at = EXCLUDED.updated_at " + COPY_GUARD,
            row.id, row.display_name, row.home_region, row.settings, row.version, row.checksum, self.clock()))
        return not status.endswith(" 0")

    async def copy_many(self, rows: list[Row]) -> int:
        """Bulk copy (backfill): one statement for the whole batch; returns rows changed."""
        if not rows:
            return 0
        import json
        now = self.clock()
        args = ([r.id for r in rows], [r.display_name for r in rows], [r.home_region for r in rows],
                [json.dumps(r.settings) for r in rows], [r.version for r in rows],
                [r.checksum for r in rows])
        status = await self.run("copy a batch of profiles", lambda c: c.execute(
            "INSERT INTO profiles_v2 AS p (id, display_name, home_region, settings, version, checksum, updated_at) "
            "SELECT i, d, h, s::jsonb, v, k, $7 FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], "
            "$5::bigint[], $6::text[]) AS u(i, d, h, s, v, k) ON CONFLICT (id) DO UPDATE SET "
            "display_name = EXCLUDED.display_name, home_region = EXCLUDED.home_region, "
            "settings = EXCLUDED.settings, version = EXCLUDED.version, checksum = EXCLUDED.checksum, "
            "updated_at = EXCLUDED.updated_at " + COPY_GUARD, *args, now), timeout=max(self.timeout * 5, 10))
        return int(status.rsplit(" ", 1)[-1])

    async def get(self, profile_id: str) -> Row | None:
        record = await self.run("read a profile", lambda c: c.fetchrow(
            f"SELECT {COLUMNS} FROM profiles_v2 WHERE id = $1", profile_id))
        return _row(record) if record else None

    async def get_many(self, ids: list[str]) -> dict[str, Row]:
        records = await self.run("read profiles", lambda c: c.fetch(
            f"SELECT {COLUMNS} FROM profiles_v2 WHERE id = ANY($1::text[])", ids))
        return {r["id"]: _row(r) for r in records}

    async def page(self, after: str, limit: int) -> list[Row]:
        records = await self.run("scan profiles", lambda c: c.fetch(
            f"SELECT {COLUMNS} FROM profiles_v2 WHERE id > $1 ORDER BY id LIMIT $2", after, limit),
            timeout=max(self.timeout * 5, 10))
        return [_row(r) for r in records]

    async def count(self) -> int:
        return await self.run("count profiles", lambda c: c.fetchval("SELECT count(*) FROM profiles_v2"))

    async def checkpoint(self, job: str) -> tuple[str, int]:
        record = await self.run("read the sync checkpoint", lambda c: c.fetchrow(
            "SELECT last_id, rows_copied FROM sync_checkpoint WHERE job = $1", job))
        return (record["last_id"], record["rows_copied"]) if record else ("", 0)

    async def save_checkpoint(self, job: str, last_id: str, rows_copied: int) -> None:
        await self.run("save the sync checkpoint", lambda c: c.execute(
            "INSERT INTO sync_checkpoint (job, last_id, rows_copied, updated_at) VALUES ($1, $2, $3, $4) "
            "ON CONFLICT (job) DO UPDATE SET last_id = EXCLUDED.last_id, rows_copied = EXCLUDED.rows_copied, "
            "updated_at = EXCLUDED.updated_at", job, last_id, rows_copied, self.clock()))
