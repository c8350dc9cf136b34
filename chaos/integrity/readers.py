"""What the services stored, read straight from their databases (not through the fault proxy),
for the integrity checkers — and the checks run end to end for one experiment.

Stored data lags acknowledgements (consumers are asynchronous), so each check re-reads until
nothing is missing or ``settle_seconds`` have passed: "eventually stored" is the promise.
"""
from __future__ import annotations

import asyncio
import time
from typing import Any, Callable

import httpx

from chaos.integrity.analytics import check_analytics
from chaos.integrity.chat import check_chat
from chaos.integrity.migration import AGREEMENT, NO_LOST_WRITES, check_agreement, check_no_lost_writes
from chaos.integrity.result import skipped

def _db(dsn: str, database: str) -> str:
    base, sep, _ = dsn.rpartition("/")
    return f"{base}/{database}" if sep else dsn


async def _fetch(dsn: str, query: str, *args: Any, timeout: float = 10.0) -> list[dict]:
    import asyncpg
    conn = await asyncpg.connect(dsn, timeout=timeout)
    try:
        return [dict(r) for r in await conn.fetch(query, *args, timeout=timeout)]
    finally:
        await conn.close()


def fetch(dsn: str, query: str, *args: Any) -> list[dict]:
    return asyncio.run(_fetch(dsn, query, *args))


def _settle(check: Callable[[], dict], settle_seconds: float, done: Callable[[dict], bool]) -> dict:
    deadline = time.monotonic() + settle_seconds
    while True:
        result = check()
        if done(result) or time.monotonic() >= deadline:
            return result
        time.sleep(0.5)


# --- chat ------------------------------------------------------------------------------

def chat_rows(endpoints: dict[str, str], regions: list[str], convs: list[str]) -> list[dict]:
    """Every stored message of these conversations, in every region."""
    rows: list[dict] = []
    for region in regions:
        dsn = endpoints.get(f"pg-{region}")
        if not dsn:
            continue
        for r in fetch(_db(dsn, "chat"), "SELECT id, conv, seq FROM messages WHERE conv = ANY($1::text[])", convs):
            r["region"] = region
            rows.append(r)
    return rows


def check_chat_run(endpoints: dict[str, str], regions: list[str], ledger: list[dict], *, indeterminate: int,
                   settle_seconds: float = 20.0) -> dict:
    """The run's conversations are its own (its users' names carry the run id, loadtests.run_id),
    so everything stored in them, whenever, is the run's: no time window can cut a message off."""
    acked = [e for e in ledger if e.get("kind") == "chat"]
    received = [e for e in ledger if e.get("kind") == "chat_received"]
    if not acked:
        return skipped("chat.no_loss", "no acknowledged chat message in the ledger")
    convs = sorted({str(a.get("conv")) for a in acked})

    def check() -> dict:
        return check_chat(acked, chat_rows(endpoints, regions, convs), received, indeterminate=indeterminate)
    return _settle(check, settle_seconds, lambda r: r["counts"].get("lost", 0) == 0)


# --- analytics -------------------------------------------------------------------------

def check_analytics_run(endpoints: dict[str, str], ledger: list[dict], *, since: float, until: float,
                        settle_seconds: float = 20.0) -> dict:
    acked = [str(e["id"]) for e in ledger if e.get("kind") == "chat" and e.get("id") is not None]
    dsn = endpoints.get("pg-analytics")
    if not dsn:
        return skipped("analytics.totals", "no pg-analytics in the lab")
    if not acked:
        return skipped("analytics.totals", "no acknowledged chat message in the ledger")
    db = _db(dsn, "analytics")
    keys = [f"sent:{i}" for i in acked]

    def check() -> dict:
        rows = fetch(db, "SELECT key FROM raw_events WHERE key = ANY($1::text[])", keys)
        counted = [r["key"].removeprefix("sent:") for r in rows]
        by_ids = check_analytics(acked, counted_ids=counted)
        # the speed layer's totals over the run's seconds must equal the raw events there
        lo, hi = int(since), int(until) + 1
        raw = fetch(db, "SELECT count(*) AS n FROM raw_events WHERE status = 'sent' AND second >= $1 "
                        "AND second < $2", lo, hi)[0]["n"]
        speed = fetch(db, "SELECT coalesce(sum(value), 0) AS n FROM rollup_speed WHERE metric = 'messages' "
                          "AND second >= $1 AND second < $2", lo, hi)[0]["n"]
        totals = check_analytics([], expected_by_key={"speed_layer_messages": int(raw)},
                                 counted_by_key={"speed_layer_messages": int(speed)})
        merged = dict(by_ids)
        merged["counts"] = {k: by_ids["counts"].get(k, 0) + totals["counts"].get(k, 0)
                            for k in set(by_ids["counts"]) | set(totals["counts"])}
        merged["examples"] = by_ids["examples"] + totals["examples"]
        merged["ok"] = by_ids["ok"] and totals["ok"]
        merged["info"] = {**by_ids["info"], "speed_layer": totals["info"]}
        return merged
    return _settle(check, settle_seconds, lambda r: r["ok"])


# --- migration -------------------------------------------------------------------------

OLD_IS_SOURCE = {"dual_write", "dual_read"}


def _profiles(endpoints: dict[str, str]) -> tuple[dict[str, tuple[int, str]], dict[str, tuple[int, str]]]:
    from system.migration.profile import checksum, document
    old: dict[str, tuple[int, str]] = {}
    new: dict[str, tuple[int, str]] = {}
    if endpoints.get("pg-old"):
        for r in fetch(_db(endpoints["pg-old"], "profiles"), "SELECT id, doc::text AS doc FROM profiles_v1"):
            import json
            doc = json.loads(r["doc"])
            old[r["id"]] = (int(doc.get("version", 0)), checksum(document(
                r["id"], doc.get("display_name"), doc.get("home_region"), doc.get("settings") or {})))
    if endpoints.get("pg-new"):
        for r in fetch(_db(endpoints["pg-new"], "profiles"), "SELECT id, version, checksum FROM profiles_v2"):
            new[r["id"]] = (int(r["version"]), r["checksum"])
    return old, new


def migration_phase(endpoints: dict[str, str]) -> str | None:
    url = endpoints.get("migration")
    if not url:
        return None
    try:
        return httpx.get(f"{url}/migration/phase", timeout=5).json().get("phase")
    except (httpx.HTTPError, ValueError, AttributeError):
        return None


def check_migration_run(endpoints: dict[str, str], ledger: list[dict], *, want: list[str],
                        settle_seconds: float = 20.0) -> list[dict]:
    acked = [e for e in ledger if e.get("kind") == "profile"]
    if not endpoints.get("pg-old") and not endpoints.get("pg-new"):
        return [skipped(n, "no migration databases in the lab") for n in want]
    url = endpoints.get("migration")
    if url:   # agreement is promised once sync has run: run it
        try:
            httpx.post(f"{url}/migration/sync", json={}, timeout=60)
        except httpx.HTTPError:
            pass
    phase = migration_phase(endpoints)
    out = []

    def agreement() -> dict:
        old, new = _profiles(endpoints)
        if phase in ("write_new_only", "decommission"):
            return skipped(AGREEMENT, f"phase {phase}: the old store is no longer written")
        r = check_agreement({k: f"{v[0]}:{v[1]}" for k, v in old.items()},
                            {k: f"{v[0]}:{v[1]}" for k, v in new.items()})
        r["info"]["phase"] = phase
        return r

    def no_lost() -> dict:
        old, new = _profiles(endpoints)
        source = old if (phase in OLD_IS_SOURCE or phase is None) else new
        r = check_no_lost_writes(acked, source)
        r["info"].update(phase=phase, read_from="old" if source is old else "new")
        return r

    if AGREEMENT in want:
        out.append(_settle(agreement, settle_seconds, lambda r: r["ok"] is not False))
    if NO_LOST_WRITES in want:
        out.append(skipped(NO_LOST_WRITES, "no acknowledged profile write in the ledger") if not acked
                   else _settle(no_lost, settle_seconds, lambda r: r["ok"] is not False))
    return out
