"""Migration benchmark on real PostgreSQL (pg-old and pg-new, direct — no fault proxy):
requests/s and p99 latency of the profiles API in each phase (closed loop, 50 % writes), and
the backfill's rows/s.

    python benchmarks/bench_migration.py [--seconds 4] [--workers 16] [--rows 100000]
"""
from __future__ import annotations

import argparse
import asyncio
import random
import shutil
import os
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from lab.servers import postgres  # noqa: E402
from lab.servers.base import free_port  # noqa: E402
from lab.servers.base import ManagedProcess  # noqa: E402
from lab.servers.group import ServerGroup  # noqa: E402
from benchmarks._service import cpu_seconds, start_service  # noqa: E402

PHASES = ["dual_write", "dual_read", "read_new", "write_new_only", "decommission"]
REGIONS = ["us-east", "eu-west", "ap-south"]


async def load(url: str, seconds: float, workers: int, ids: int) -> tuple[int, int, list[float]]:
    rng = random.Random(1)
    latencies: list[float] = []
    errors = 0
    stop = time.monotonic() + seconds

    async def worker() -> None:
        nonlocal errors
        async with httpx.AsyncClient(base_url=url, timeout=10) as c:
            while time.monotonic() < stop:
                pid = f"u{rng.randrange(ids):06d}"
                t = time.perf_counter()
                if rng.random() < 0.5:
                    r = await c.put(f"/profiles/{pid}", json={"display_name": "n", "home_region": rng.choice(REGIONS),
                                                             "settings": {"k": rng.randrange(100)}})
                else:
                    r = await c.get(f"/profiles/{pid}")
                latencies.append((time.perf_counter() - t) * 1000)
                if r.status_code not in (200, 404):
                    errors += 1

    await asyncio.gather(*(worker() for _ in range(workers)))
    return len(latencies), errors, latencies


def p99(values: list[float]) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(0.99 * len(s)))] if s else 0.0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=4)
    ap.add_argument("--workers", type=int, default=16)
    ap.add_argument("--rows", type=int, default=100_000)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="nl-bench-migration-"))
    group = ServerGroup(tmp / "servers")
    proc = None
    try:
        old, new = group.postgres("pg-old"), group.postgres("pg-new")
        for pg in (old, new):
            postgres.create_database(pg.port, "profiles")
            postgres.create_database(pg.port, "backfill")
        port = free_port()

        def start(db: str) -> ManagedProcess:
            cfg = {"name": "migration", "role": "migration", "host": "127.0.0.1", "port": port, "regions": REGIONS,
                   "log_file": str(tmp / f"migration-{db}.log"),
                   "deps": {"postgres_old": old.dsn_for(db), "postgres_new": new.dsn_for(db)},
                   "settings": {"pool_size": 20, "sync_batch_size": 5000}}
            return start_service("system.migration", cfg, tmp, tag=db)

        url = f"http://127.0.0.1:{port}"
        proc = start("profiles")
        rows = []
        for i, phase in enumerate(PHASES):
            if i:
                httpx.post(url + "/migration/sync", json={}, timeout=120)
                r = httpx.post(url + "/migration/phase", json={"phase": phase}, timeout=120)
                assert r.status_code == 200, r.text
            c0 = cpu_seconds(proc)
            n, errors, lat = asyncio.run(load(url, args.seconds, args.workers, 5000))
            cpu_ms = (cpu_seconds(proc) - c0) * 1000 / max(1, n)
            rows.append((phase, n / args.seconds, sorted(lat)[len(lat) // 2], p99(lat), errors, cpu_ms))
        proc.stop()

        # backfill: rows made in pg-old directly, copied by the sync job through the service
        async def fill() -> None:
            import asyncpg
            conn = await asyncpg.connect(old.dsn_for("backfill"))
            await conn.execute("CREATE TABLE IF NOT EXISTS profiles_v1 (id text PRIMARY KEY, doc jsonb NOT NULL)")
            await conn.execute(
                "INSERT INTO profiles_v1 (id, doc) SELECT 'p' || lpad(i::text, 8, '0'), jsonb_build_object("
                "'display_name', 'name ' || i, 'home_region', 'eu-west', 'settings', jsonb_build_object('theme', 'dark',"
                " 'n', i), 'version', 1) FROM generate_series(1, $1) i", args.rows)
            await conn.close()
        asyncio.run(fill())
        proc = start("backfill")
        report = httpx.post(url + "/migration/sync", json={}, timeout=600).json()
        verify = httpx.post(url + "/migration/verify", timeout=600).json()

        print(f"\n{'phase':<18}{'req/s':>10}{'p50 ms':>10}{'p99 ms':>10}{'errors':>8}{'svc CPU ms/req':>16}")
        for phase, rps, p50, p99v, errors, cpu_ms in rows:
            print(f"{phase:<18}{rps:>10.0f}{p50:>10.1f}{p99v:>10.1f}{errors:>8}{cpu_ms:>16.2f}")
        print(f"\nbackfill: {report['scanned']} rows in {report['seconds']:.2f} s = {report['rows_per_second']:.0f} rows/s "
              f"(target >= 5,000: {'met' if report['rows_per_second'] >= 5000 else 'NOT met'}); "
              f"verify: {verify['mismatches']} mismatches of {verify['old_count']} rows")
        print(f"machine load average (1 min) at the end: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    finally:
        if proc:
            proc.stop()
        group.close()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
