"""Presence benchmark: how long a user's presence change takes to be seen in the other regions.

    python benchmarks/bench_presence.py [--users 200,1000] [--rate 200] [--json FILE]

Three regions, one chat server each, a 3-node NATS cluster whose routes pass the fault proxy
(as the lab runs them), default presence settings. ``--users`` users (homed round robin)
connect over WebSocket at ``--rate`` a second, then all disconnect at the same rate. Each
other region is polled every 25 ms with the bulk form of ``GET /presence?users=...``; the
propagation of a change is the time it was first seen there (fresh, in the new state) minus
its ``as_of`` (the origin server's clock when the change happened; one host, one clock).
Polling adds up to 25 ms. Target: p99 < 2 s. Beside it, send->ack latency of a steady
50 msg/s conversation measured while nothing happens and while the users come and go:
presence changes must not slow message delivery.
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

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx  # noqa: E402
import numpy as np  # noqa: E402
import websockets  # noqa: E402

from lab.servers.group import ServerGroup  # noqa: E402
from system.chat.client import ChatClient  # noqa: E402
from system.chat.partition_lab import PartitionLab  # noqa: E402
from system.common.auth import issue_token  # noqa: E402

REGIONS = ["us-east", "eu-west", "ap-south"]
SETTINGS = {"rate_limit_per_second": 1000, "rate_limit_burst": 2000}
POLL_SECONDS = 0.025


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q * 100)) if values else float("nan")


class Watch:
    """Polls every region for the users whose change it has not seen there yet."""

    def __init__(self, lab: PartitionLab, token: str) -> None:
        self.urls = {r: lab.chat.chat_urls[f"chat-{r}-1"] for r in REGIONS}
        self.token = token
        self.waiting: dict[str, dict[str, tuple[str, float]]] = {r: {} for r in REGIONS}   # user -> (state, after)
        self.delays: list[float] = []

    def expect(self, user: str, home: str, state: str, after: float) -> None:
        for region in REGIONS:
            if region != home:
                self.waiting[region][user] = (state, after)

    def pending(self) -> int:
        return sum(len(w) for w in self.waiting.values())

    async def run(self, stop: asyncio.Event) -> None:
        async with httpx.AsyncClient(timeout=5, headers={"Authorization": f"Bearer {self.token}"}) as http:
            while not stop.is_set() or self.pending():
                await asyncio.gather(*(self._poll(http, r) for r in REGIONS))
                await asyncio.sleep(POLL_SECONDS)

    async def _poll(self, http: httpx.AsyncClient, region: str) -> None:
        waiting = self.waiting[region]
        users = list(waiting)[:1000]
        if not users:
            return
        answers = (await http.get(f"{self.urls[region]}/presence", params={"users": ",".join(users)})).json()
        now = time.time()
        for user, a in answers["presence"].items():
            state, after = waiting[user]
            if a["state"] == state and not a["stale"] and a["as_of"] is not None and a["as_of"] >= after:
                self.delays.append(now - a["as_of"])
                del waiting[user]


async def churn(lab: PartitionLab, watch: Watch, n: int, rate: float) -> dict:
    users = [f"p{i}@{REGIONS[i % len(REGIONS)]}" for i in range(n)]
    socks = []
    began = time.time()
    for i, user in enumerate(users):
        home = user.split("@")[1]
        url = lab.chat.chat_urls[f"chat-{home}-1"].replace("http://", "ws://") + "/ws"
        before = time.time()
        ws = await websockets.connect(url, additional_headers={
            "Authorization": f"Bearer {issue_token(lab.chat.secret, user)}"}, ping_interval=None)
        await ws.recv()                                          # hello: the server has attached us
        socks.append(ws)
        watch.expect(user, home, "online", before)
        await asyncio.sleep(max(0.0, began + (i + 1) / rate - time.time()))
    online_delays = await settle(watch)
    began = time.time()
    for i, (user, ws) in enumerate(zip(users, socks)):
        before = time.time()
        await ws.close()
        watch.expect(user, user.split("@")[1], "offline", before)
        await asyncio.sleep(max(0.0, began + (i + 1) / rate - time.time()))
    offline_delays = await settle(watch)
    return {"users": n, "online": summary(online_delays), "offline": summary(offline_delays)}


async def settle(watch: Watch, timeout: float = 30.0) -> list[float]:
    end = time.monotonic() + timeout
    while watch.pending() and time.monotonic() < end:
        await asyncio.sleep(0.05)
    delays, watch.delays = watch.delays, []
    if watch.pending():
        raise SystemExit(f"{watch.pending()} presence changes were not seen within {timeout:g} s")
    return delays


def summary(delays: list[float]) -> dict:
    return {"samples": len(delays), "p50_ms": round(pct(delays, 0.5) * 1000, 1),
            "p99_ms": round(pct(delays, 0.99) * 1000, 1), "max_ms": round(max(delays) * 1000, 1)}


async def send_latency(lab: PartitionLab, stop: asyncio.Event, out: list[float]) -> None:
    """A steady 50 msg/s conversation from us-east to eu-west; send->ack seconds into ``out``."""
    alice, bob = "sender@us-east", "receiver@eu-west"
    a = ChatClient(alice, issue_token(lab.chat.secret, alice),
                   server=lab.chat.chat_urls["chat-us-east-1"].replace("http://", "ws://") + "/ws")
    await a.connect()
    try:
        while not stop.is_set():
            began = time.monotonic()
            await a.send(bob, "x", timeout=10)
            out.append(time.monotonic() - began)
            await asyncio.sleep(max(0.0, 0.02 - (time.monotonic() - began)))
    finally:
        await a.close()


async def measure(lab: PartitionLab, sizes: list[int], rate: float) -> dict:
    watch = Watch(lab, issue_token(lab.chat.secret, "watcher@us-east"))
    acks: list[float] = []
    stop_send, stop_watch = asyncio.Event(), asyncio.Event()
    sender = asyncio.create_task(send_latency(lab, stop_send, acks))
    watcher = asyncio.create_task(watch.run(stop_watch))
    results = []
    try:
        await asyncio.sleep(5)                         # the quiet baseline
        quiet_end = len(acks)
        for n in sizes:
            results.append(await churn(lab, watch, n, rate))
            print(f"  {n} users: {json.dumps(results[-1])}", flush=True)
    finally:
        stop_send.set()
        stop_watch.set()
        await asyncio.gather(sender, watcher)
    quiet, busy = acks[:quiet_end], acks[quiet_end:]
    return {"runs": results,
            "send_ack_quiet_ms": {"p50": round(pct(quiet, 0.5) * 1000, 2), "p99": round(pct(quiet, 0.99) * 1000, 2)},
            "send_ack_during_churn_ms": {"p50": round(pct(busy, 0.5) * 1000, 2),
                                         "p99": round(pct(busy, 0.99) * 1000, 2)}}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--users", default="200,1000", help="comma-separated user counts (default 200,1000)")
    ap.add_argument("--rate", type=float, default=200.0, help="connects (and disconnects) a second")
    ap.add_argument("--json", help="also write the figures to this file")
    args = ap.parse_args(argv)
    try:
        sizes = [int(x) for x in args.users.split(",")]
        if not sizes or min(sizes) < 1 or args.rate <= 0:
            raise ValueError
    except ValueError:
        ap.error(f"--users must be positive integers separated by commas and --rate > 0, got {args.users!r}")
    root = Path(tempfile.mkdtemp(prefix="nineslab-bench-presence-"))
    group = ServerGroup(root)
    lab = PartitionLab(group, REGIONS)
    try:
        print("starting 3 regions (PostgreSQL, Redis, NATS through the fault proxy, a chat server each) ...",
              flush=True)
        chat = lab.start()
        for r in REGIONS:
            chat.start_chat(f"chat-{r}-1", r, SETTINGS, wait=False)
        for r in REGIONS:
            chat.wait_ready(f"chat-{r}-1")
        result = asyncio.run(measure(lab, sizes, args.rate))
    finally:
        lab.close()
        group.close()
        shutil.rmtree(root, ignore_errors=True)
    result["load_average"] = [round(x, 2) for x in os.getloadavg()]
    result["rate_per_second"] = args.rate
    last = result["runs"][-1]
    worst = max(last["online"]["p99_ms"], last["offline"]["p99_ms"])
    print(f"\npresence propagation, {last['users']} users at {args.rate:g} changes/s, load average "
          f"{result['load_average'][0]}:")
    for run in result["runs"]:
        for kind in ("online", "offline"):
            f = run[kind]
            print(f"  {run['users']:5d} users {kind:8s} p50 {f['p50_ms']:7.1f} ms  p99 {f['p99_ms']:7.1f} ms  "
                  f"max {f['max_ms']:7.1f} ms  ({f['samples']} observations)")
    print(f"  p99 / 2 s target: {worst / 2000:.3f}")
    q, b = result["send_ack_quiet_ms"], result["send_ack_during_churn_ms"]
    print(f"send->ack p50 {q['p50']} ms quiet, {b['p50']} ms while users come and go "
          f"(ratio {b['p50'] / q['p50']:.2f}); p99 {q['p99']} -> {b['p99']} ms (ratio {b['p99'] / q['p99']:.2f})")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
