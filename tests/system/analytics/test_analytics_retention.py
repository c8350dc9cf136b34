"""Retention of the analytics store on a real PostgreSQL: old raw events and superseded speed
rollups are deleted after a batch run, totals stay exact, and an event too old to be checked
against its key is refused instead of being counted twice."""
from __future__ import annotations

import asyncio

import pytest

from system.analytics.config import AnalyticsSettings
from system.analytics.model import Event
from system.analytics.store import AnalyticsStore

pytestmark = [pytest.mark.infra]

T0 = 1_800_000_000.0
HOUR = 3600


def sent(key: str, ts: float) -> Event:
    return Event(key=f"sent:{key}", status="sent", region="us-east", conv="a|b", latency_ms=None, ts=ts)


async def _scenario(dsn: str) -> dict:
    now = [T0]
    store = AnalyticsStore(dsn, retention_seconds=HOUR, clock=lambda: now[0])
    try:
        first = await store.ingest([sent("old", T0 - 2 * HOUR), sent("a", T0 - 100), sent("b", T0 - 50)])
        # the batch layer takes over everything before T0, then an hour and more passes
        await store.recompute(int(T0), lookback=600, now=T0)
        now[0] = T0 + HOUR + 200
        late = await store.ingest([sent("c", now[0] - 10)])
        pruned = await store.prune()
        pool = await store.pool()
        raw = [r["key"] for r in await pool.fetch("SELECT key FROM raw_events ORDER BY key")]
        speed_left = await pool.fetchval("SELECT count(*) FROM rollup_speed WHERE second < $1", int(T0))
        replayed = await store.ingest([sent("a", T0 - 100)])   # a stream replay of a pruned event
        totals = await store.totals()
        return {"first": first, "late": late, "pruned": pruned, "raw": raw, "speed_left": speed_left,
                "replayed": replayed, "messages": totals.get(("messages", ""))}
    finally:
        await store.close()


def test_prune_keeps_totals_exact_and_refuses_events_older_than_retention(env):
    got = asyncio.run(_scenario(env.dsn))
    assert [e.key for e in got["first"].fresh] == ["sent:a", "sent:b"] and got["first"].expired == 1
    assert [e.key for e in got["late"].fresh] == ["sent:c"]
    assert got["raw"] == ["sent:c"], "raw events past the retention must be gone, newer ones kept"
    assert got["pruned"]["raw_events"] == 2 and got["pruned"]["rollup_speed"] > 0
    assert got["speed_left"] == 0, "speed rollups below the watermark and the horizon are superseded"
    assert got["replayed"].fresh == [] and got["replayed"].expired == 1, "a replayed pruned event must not count"
    assert got["messages"] == 3, "a, b from the batch layer and c from the speed layer"


def test_retention_shorter_than_the_batch_lookback_is_refused():
    with pytest.raises(ValueError, match="raw_retention_seconds"):
        AnalyticsSettings(raw_retention_seconds=600, batch_lookback_seconds=600)
