"""The regional message store in PostgreSQL (database ``chat``), behind a circuit breaker.

One table, ``messages``, keyed by message id: every insert is ``ON CONFLICT (id) DO NOTHING``
so a redelivered or re-stored message is stored exactly once. ``store_many`` inserts a whole
batch in one statement (the consumer's unit of work). Reads return plain dicts in the
JetStream JSON shape.
"""
from __future__ import annotations

import asyncio

import asyncpg

from lab.errors import DependencyError
from system.common.breaker import CircuitBreaker

SCHEMA = """
CREATE TABLE IF NOT EXISTS messages (
    id text PRIMARY KEY,
    conv text NOT NULL,
    seq bigint NOT NULL,
    sender text NOT NULL,
    recipient text NOT NULL,
    from_region text,
    to_region text,
    body text NOT NULL,
    sent_ts double precision,
    ts double precision NOT NULL,
    stored_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS messages_recipient_seq ON messages (recipient, seq);
CREATE INDEX IF NOT EXISTS messages_sender_seq ON messages (sender, seq);
CREATE INDEX IF NOT EXISTS messages_conv_seq ON messages (conv, seq);
"""

INSERT = """
INSERT INTO messages (id, conv, seq, sender, recipient, from_region, to_region, body, sent_ts, ts)
SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[], $4::text[], $5::text[], $6::text[],
                     $7::text[], $8::text[], $9::float8[], $10::float8[])
ON CONFLICT (id) DO NOTHING
"""

COLUMNS = "id, conv, seq, sender, recipient, from_region, to_region, body, sent_ts, ts"

PG_ERRORS = (OSError, asyncio.TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError,
             ConnectionError)


def columns(msgs: list[dict]) -> list[list]:
    """The arguments of ``INSERT`` for a batch of messages (one array a column)."""
    return [[m["id"] for m in msgs], [m["conv"] for m in msgs], [m["seq"] for m in msgs],
            [m["from"] for m in msgs], [m["to"] for m in msgs], [m.get("from_region") for m in msgs],
            [m.get("to_region") for m in msgs], [m["body"] for m in msgs],
            [m.get("sent_ts") for m in msgs], [m["ts"] for m in msgs]]


def row_to_message(row) -> dict:
    return {"id": row["id"], "conv": row["conv"], "seq": row["seq"], "from": row["sender"],
            "to": row["recipient"], "from_region": row["from_region"], "to_region": row["to_region"],
            "body": row["body"], "sent_ts": row["sent_ts"], "ts": row["ts"]}


class MessageStore:
    def __init__(self, dsn: str, breaker: CircuitBreaker, *, timeout: float = 2.0,
                 pool_size: int = 4) -> None:
        self.dsn, self.breaker, self.timeout, self.pool_size = dsn, breaker, timeout, pool_size
        self.pool: asyncpg.Pool | None = None
        self._lock = asyncio.Lock()

    async def _ensure_pool(self) -> asyncpg.Pool:
        if self.pool is not None:
            return self.pool
        async with self._lock:
            if self.pool is None:
                pool = await asyncpg.create_pool(self.dsn, min_size=1, max_size=self.pool_size,
                                                 timeout=self.timeout, command_timeout=self.timeout)
                async with pool.acquire() as conn:
                    await conn.execute(SCHEMA)
                self.pool = pool
        return self.pool

    async def _run(self, fn):
        async def op():
            pool = await self._ensure_pool()
            async with pool.acquire(timeout=self.timeout) as conn:
                return await fn(conn)
        try:
            return await self.breaker.call(op, failures=PG_ERRORS)
        except PG_ERRORS as exc:
            raise DependencyError(f"postgres: {type(exc).__name__}: {exc}") from exc

    async def start(self) -> None:
        """Create the schema now if PostgreSQL answers; otherwise on first use."""
        try:
            await self._run(lambda conn: conn.execute("SELECT 1"))
        except DependencyError:
            pass

    async def store_many(self, msgs: list[dict]) -> None:
        cols = columns(msgs)
        await self._run(lambda conn: conn.execute(INSERT, *cols))

    async def history(self, user: str, since: int = 0, conv: str | None = None,
                      limit: int = 500) -> list[dict]:
        if conv:
            sql = (f"SELECT {COLUMNS} FROM messages WHERE conv=$1 AND seq>$2 AND (sender=$3 OR recipient=$3) "
                   f"ORDER BY seq LIMIT $4")
            rows = await self._run(lambda c: c.fetch(sql, conv, since, user, limit))
        else:
            sql = (f"SELECT {COLUMNS} FROM (SELECT {COLUMNS} FROM messages WHERE recipient=$1 AND seq>$2 "
                   f"UNION SELECT {COLUMNS} FROM messages WHERE sender=$1 AND seq>$2) m ORDER BY seq LIMIT $3")
            rows = await self._run(lambda c: c.fetch(sql, user, since, limit))
        return [row_to_message(r) for r in rows]

    async def undelivered(self, user: str, since: dict[str, int], limit: int = 5000) -> list[dict]:
        """Messages to ``user`` after the given per-conversation sequences (0 for unlisted ones)."""
        import json
        sql = (f"SELECT {COLUMNS} FROM messages WHERE recipient=$1 "
               f"AND seq > COALESCE(($2::jsonb ->> conv)::bigint, 0) ORDER BY seq LIMIT $3")
        rows = await self._run(lambda c: c.fetch(sql, user, json.dumps(since), limit))
        return [row_to_message(r) for r in rows]

    async def ping(self) -> bool:
        await self._run(lambda c: c.fetchval("SELECT 1"))
        return True

    async def close(self) -> None:
        if self.pool is not None:
            try:
                await asyncio.wait_for(self.pool.close(), 3)
            except (asyncio.TimeoutError, *PG_ERRORS):
                self.pool.terminate()
            self.pool = None
