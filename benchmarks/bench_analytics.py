"""Analytics benchmark: ingest rate and lag on real NATS JetStream + PostgreSQL.

1. steady: events published at a fixed rate (default 5,000/s, open model: each event's
   ``ts`` is its intended publish time) for a while; lag = commit of its count - ``ts``;
2. backlog: a burst published first, then the time the service needs to count it all.

    python benchmarks/bench_analytics.py [--rate 5000] [--seconds 15] [--backlog 60000]
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from lab.servers import postgres  # noqa: E402
from lab.servers.base import free_port, wait_until  # noqa: E402
from lab.servers.group import ServerGroup  # noqa: E402
from benchmarks._service import cpu_seconds, start_service  # noqa: E402

REGIONS = ["us-east", "eu-west", "ap-south"]


def event(i: int, ts: float, prefix: str) -> tuple[str, bytes, str]:
    r = REGIONS[i % 3]
    if i % 10 == 9:
        return f"events.delivered.{r}", json.dumps({"id": f"{prefix}{i - 1}", "latency_ms": 20 + i % 80,
                                                    "ts": ts}).encode(), f"d{prefix}{i}"
    return f"chat.{r}", json.dumps({"id": f"{prefix}{i}", "conv": f"c{i % 500}", "to_region": r,
                                    "ts": ts, "sent_ts": ts}).encode(), f"{prefix}{i}"


async def publish_steady(url: str, rate: int, seconds: float, prefix: str) -> int:
    import nats
    nc = await nats.connect(url)
    tick, n = 0.01, 0
    per_tick = rate * tick
    start = time.time()
    try:
        while (now := time.time()) - start < seconds:
            due = int((now - start) / tick * per_tick) + int(per_tick)
            while n < due:
                subject, data, mid = event(n, start + n / rate, prefix)
                await nc.publish(subject, data, headers={"Nats-Msg-Id": mid})
                n += 1
            await nc.flush()
            await asyncio.sleep(max(0.0, start + (n / rate) - time.time()))
    finally:
        await nc.close()
    return n


async def publish_burst(url: str, count: int, prefix: str) -> None:
    import nats
    nc = await nats.connect(url)
    try:
        now = time.time()
        for i in range(count):
            subject, data, mid = event(i, now, prefix)
            await nc.publish(subject, data, headers={"Nats-Msg-Id": mid})
            if i % 2000 == 0:
                await nc.flush()
        await nc.flush()
    finally:
        await nc.close()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rate", type=int, default=5000)
    ap.add_argument("--seconds", type=float, default=15)
    ap.add_argument("--backlog", type=int, default=60000)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="nl-bench-analytics-"))
    group = ServerGroup(tmp / "servers")
    proc = None
    try:
        pg = group.postgres("pg-analytics")
        postgres.create_database(pg.port, "analytics")
        node = group.nats_cluster(1, prefix="nats")[0]
        port = free_port()
        cfg = {"name": "analytics", "role": "analytics", "host": "127.0.0.1", "port": port, "regions": REGIONS,
               "log_file": str(tmp / "analytics.log"), "deps": {"postgres": pg.dsn_for("analytics"), "nats": [node.url]},
               "settings": {}, "events_file": str(tmp / "events.jsonl")}
        proc = start_service("system.analytics", cfg, tmp)
        url = f"http://127.0.0.1:{port}"
        stats = lambda: httpx.get(url + "/api/stats", timeout=5).json()
        cpu0 = cpu_seconds(proc)

        print(f"steady: publishing {args.rate} events/s for {args.seconds:.0f} s ...", flush=True)
        sent = asyncio.run(publish_steady(node.url, args.rate, args.seconds, "s"))
        wait_until(lambda: stats()["ingested"] >= sent, what="steady events counted", timeout=120)
        steady = stats()
        steady_cpu = cpu_seconds(proc) - cpu0

        # the backlog: stop the service, publish, start it again, time the catch-up (from the
        # start of the process: its own start-up counts, as in a real restart)
        proc.stop()
        asyncio.run(publish_burst(node.url, args.backlog, "b"))
        t0 = time.monotonic()
        proc = start_service("system.analytics", cfg, tmp, tag="restart")
        wait_until(lambda: stats()["ingested"] >= args.backlog, what="backlog counted", timeout=180)
        backlog_seconds = time.monotonic() - t0
        backlog_cpu = cpu_seconds(proc)
        print()
        print(f"{'scenario':<24}{'events':>9}{'events/s':>10}{'lag p50 s':>11}{'lag p99 s':>11}{'CPU us/event':>14}")
        print(f"{'steady @ ' + str(args.rate) + '/s':<24}{sent:>9}{sent / args.seconds:>10.0f}"
              f"{steady['lag_p50_seconds']:>11.3f}{steady['lag_p99_seconds']:>11.3f}{steady_cpu / sent * 1e6:>14.0f}")
        print(f"{'backlog catch-up':<24}{args.backlog:>9}{args.backlog / backlog_seconds:>10.0f}"
              f"{'-':>11}{'-':>11}{backlog_cpu / args.backlog * 1e6:>14.0f}")
        print(f"machine load average (1 min) at the end: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
        print(f"\ntarget: lag p99 < 2 s at 5,000 events/s -> "
              f"{'met' if steady['lag_p99_seconds'] < 2 and args.rate >= 5000 else 'NOT met'}")
    finally:
        if proc:
            proc.stop()
        group.close()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
