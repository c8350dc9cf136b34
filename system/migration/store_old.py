"""The old store, schema v1: one table ``profiles_v1(id, doc jsonb)`` holding the whole
profile (with its version) as a JSON document."""
from __future__ import annotations

from system.migration.store_base import Row, StoreBase

DDL_V1 = "CREATE TABLE IF NOT EXISTS profiles_v1 (id text PRIMARY KEY, doc jsonb NOT NULL);"


def _row(record) -> Row:
    doc = record["doc"]
    return Row(record["id"], doc["display_name"], doc["home_region"], doc.get("settings") or {},
               int(doc["version"]))


class OldStore(StoreBase):
    DDL = DDL_V1

    async def write_source(self, profile_id: str, doc: dict) -> int:
        body = {k: v for k, v in doc.items() if k != "id"}
        return await self.run("write a profile", lambda c: c.fetchval(
            "INSERT INTO profiles_v1 AS p (id, doc) VALUES ($1, $2::jsonb || '{\"version\": 1}'::jsonb) "
            "ON CONFLICT (id) DO UPDATE SET doc = EXCLUDED.doc || jsonb_build_object("
            "'version', (p.doc->>'version')::bigint + 1) RETURNING (doc->>'version')::bigint",
            profile_id, body))

    async def write_copy(self, row: Row) -> bool:
        body = {"display_name": row.display_name, "home_region": row.home_region,
                "settings": row.settings, "version": row.version}
        status = await self.run("copy a profile", lambda c: c.execute(
            "INSERT INTO profiles_v1 AS p (id, doc) VALUES ($1, $2) ON CONFLICT (id) DO UPDATE "
            "SET doc = EXCLUDED.doc WHERE (p.doc->>'version')::bigint < (EXCLUDED.doc->>'version')::bigint "
            "OR ((p.doc->>'version')::bigint = (EXCLUDED.doc->>'version')::bigint AND p.doc <> EXCLUDED.doc)",
            row.id, body))
        return not status.endswith(" 0")

    async def get(self, profile_id: str) -> Row | None:
        record = await self.run("read a profile", lambda c: c.fetchrow(
            "SELECT id, doc FROM profiles_v1 WHERE id = $1", profile_id))
        return _row(record) if record else None

    async def get_many(self, ids: list[str]) -> dict[str, Row]:
        records = await self.run("read profiles", lambda c: c.fetch(
            "SELECT id, doc FROM profiles_v1 WHERE id = ANY($1::text[])", ids))
        return {r["id"]: _row(r) for r in records}

    async def page(self, after: str, limit: int) -> list[Row]:
        records = await self.run("scan profiles", lambda c: c.fetch(
            "SELECT id, doc FROM profiles_v1 WHERE id > $1 ORDER BY id LIMIT $2", after, limit),
            timeout=max(self.timeout * 5, 10))
        return [_row(r) for r in records]

    async def count(self) -> int:
        return await self.run("count profiles", lambda c: c.fetchval("SELECT count(*) FROM profiles_v1"))
